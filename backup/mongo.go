package backup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/archive"
)

// Version is keepslot's version, recorded in every archive it writes.
const Version = "0.1.0"

// Config configures a Mongo backupper: the node to back up, and in the
// embedded SlotConfig where and how. Client or URI, Store and StateDir are
// required; every other field has a default.
type Config struct {
	// Client is a connected MongoDB client (driver v2). If nil, URI is
	// connected to, and disconnected by Close.
	Client *mongo.Client
	URI    string

	// ReadPreference for reading collections; default secondary preferred,
	// so that on a replica set the backup reads from a secondary. The oplog
	// is read from the primary (Oplog).
	ReadPreference *readpref.ReadPref

	// Filter selects namespaces; by default every collection of every
	// database but local and config. Exclude namespaces that hold secrets
	// here and back them up with package sensitive.
	Filter Filter

	// Timeout bounds how long Start waits for the server to answer (server
	// selection and ping) before it fails with ErrUnreachable; default
	// DefaultTimeout.
	Timeout time.Duration

	// Oplog captures the oplog written while the backup runs, as
	// mongodump --oplog does, so that a restore that replays it
	// (RestoreOptions.OplogReplay) is consistent as of the capture's end
	// (Status.Oplog.End; see the README's Consistency section). Auto, the
	// default, captures it when the server keeps one (a replica set
	// member; on the embedded FerretDB, once local.oplog.rs is created);
	// On makes Start fail with ErrNoOplog where there is none; Off never
	// captures. A backup whose oplog rolls over before it is copied fails
	// with ErrOplogRollover.
	Oplog Toggle

	// UsersAndRoles backs up admin.system.users, admin.system.roles and
	// admin.system.version, as mongodump does on a full dump, where the
	// server keeps them (a server without them, such as FerretDB, is noted
	// in Status.Notes, never a failure). Auto, the default: on a full dump,
	// one whose Filter has no Include; On: also with an Include, limited to
	// the users and roles of the databases that the backup holds; Off:
	// never. Restore merges them into the target's (see RestoreOptions).
	UsersAndRoles Toggle

	SlotConfig
}

// DefaultTimeout is how long a backup or restore waits for the MongoDB
// server to answer before it reports ErrUnreachable.
const DefaultTimeout = 10 * time.Second

// Mongo is a Backupper over a MongoDB node: a Slot whose source is every
// collection of the node that the filter selects.
type Mongo struct {
	*Slot
	client    *mongo.Client
	ownClient bool
}

var _ Backupper = (*Mongo)(nil)

// New returns a Mongo backupper for cfg. A backup that was running when an
// earlier process over the same state directory stopped is recorded as
// failed ("interrupted").
func New(cfg Config) (*Mongo, error) {
	if err := cfg.Filter.Validate(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if cfg.ReadPreference == nil {
		cfg.ReadPreference = readpref.SecondaryPreferred()
	}
	m := &Mongo{client: cfg.Client}
	if m.client == nil {
		if cfg.URI == "" {
			return nil, errors.New("backup: set Config.Client or Config.URI")
		}
		client, err := connect(cfg.URI, cfg.Timeout)
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		m.client, m.ownClient = client, true
	}
	src := &MongoSource{Client: m.client, ReadPreference: cfg.ReadPreference, Filter: cfg.Filter, Timeout: cfg.Timeout,
		Oplog: cfg.Oplog, UsersAndRoles: cfg.UsersAndRoles}
	slot, err := NewSlot(src, cfg.SlotConfig)
	if err != nil {
		m.disconnect()
		return nil, err
	}
	m.Slot = slot
	return m, nil
}

// Close cancels a running backup, waits for it to clean up, and
// disconnects the client if New connected it.
func (m *Mongo) Close() error {
	err := m.Slot.Close()
	m.disconnect()
	return err
}

func (m *Mongo) disconnect() {
	if m.ownClient {
		_ = m.client.Disconnect(context.Background())
	}
}

// MongoSource is a Source over the collections of a MongoDB node. Plan
// starts the oplog capture (Oplog) of the backup that follows it, and
// Documents reads the collections in step with it; one backup at a time.
type MongoSource struct {
	Client         *mongo.Client
	ReadPreference *readpref.ReadPref // nil: secondary preferred
	Filter         Filter
	Timeout        time.Duration // for Plan's ping; 0: DefaultTimeout
	Oplog          Toggle        // see Config.Oplog
	UsersAndRoles  Toggle        // see Config.UsersAndRoles

	oplogNS string // the oplog's namespace; "" is local.oplog.rs (tests set another)

	mu      sync.Mutex
	capture *oplogCapture     // of the last Plan, nil when it captures none
	authz   map[string]bson.D // of the last Plan: the query that selects the users and roles to back up
}

// Plan pings the server and lists the selected collections with their
// options and indexes, and the data size of their databases. It never
// counts documents: FerretDB answers count with a full scan.
func (s *MongoSource) Plan(ctx context.Context) (Plan, error) {
	pingCtx, cancel := context.WithTimeout(ctx, timeoutOr(s.Timeout))
	defer cancel()
	if err := s.Client.Ping(pingCtx, readpref.PrimaryPreferred()); err != nil {
		return Plan{}, serverError(err)
	}
	var build struct {
		Version  string `bson:"version"`
		FerretDB string `bson:"ferretdbVersion"`
	}
	buildErr := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build)
	p, err := listCollections(ctx, s.Client, s.readPref(), s.Filter, s.authzSelected, buildErr == nil && build.FerretDB != "")
	if err != nil {
		return Plan{}, serverError(err)
	}
	if buildErr == nil {
		p.ServerVersion = build.Version
	}
	authz, note := s.planAuthz(p)
	if note != "" {
		p.Notes = append(p.Notes, note)
	}
	capture, note, err := s.startOplog(ctx, p)
	if err != nil {
		return Plan{}, err
	}
	if note != "" {
		p.Notes = append(p.Notes, note)
	}
	if capture != nil {
		p.Oplog = capture
	}
	s.mu.Lock()
	s.capture, s.authz = capture, authz
	s.mu.Unlock()
	return p, nil
}

func (s *MongoSource) readPref() *readpref.ReadPref {
	if s.ReadPreference == nil {
		return readpref.SecondaryPreferred()
	}
	return s.ReadPreference
}

// Documents streams a collection's documents raw, in natural order,
// without decoding them.
func (s *MongoSource) Documents(ctx context.Context, c archive.Collection, emit func(doc []byte) error) error {
	if c.Type == "view" {
		return nil // a view has no documents of its own; its options recreate it
	}
	s.mu.Lock()
	capture, query := s.capture, s.authz[c.Namespace()]
	s.mu.Unlock()
	if query == nil {
		query = bson.D{}
	}
	if capture != nil {
		var done func()
		ctx, done = capture.session(ctx)
		defer done()
	}
	coll := s.Client.Database(c.DB).Collection(c.Name, options.Collection().SetReadPreference(s.readPref()))
	cur, err := coll.Find(ctx, query)
	if err != nil {
		return fmt.Errorf("read %s: %w", c.Namespace(), err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		if err := emit(cur.Current); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s: %w", c.Namespace(), err)
	}
	return nil
}

// connect makes a client for uri that gives up on server selection after
// timeout (DefaultTimeout if 0).
func connect(uri string, timeout time.Duration) (*mongo.Client, error) {
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(timeoutOr(timeout)))
	if err != nil {
		return nil, serverError(err)
	}
	return c, nil
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}
