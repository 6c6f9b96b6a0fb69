// Package backup backs up a MongoDB node: a [Source] for a slot.Slot that
// dumps every database of the node but local and config (like mongodump),
// collections in parallel, with its users and roles, and captures the oplog
// written meanwhile, so that the backup restores consistent as of one
// moment (package restore replays it).
//
// [New] gives the Slot: the appliance's backup, backup-status,
// backup-retrieve and backup-delete verbs over the node.
//
// A backup is ready only if it restores whole. It fails with
// [ErrSourceChanged] when a collection is dropped or replaced (another
// UUID) while it is read, or the server ends its cursor: what was read may
// be any part of the collection, and only a replay of an oplog that saw
// the drop would set it right, which a node without an oplog or a restore
// without replay lacks; a retry clears the failure, where a note would
// leave a backup that restores short. It fails with [ErrDocumentTooLarge]
// for a document above archive.MaxDocumentSize, which no restore reads, and
// with [ErrSharded] for a mongos or a sharded cluster's member: it backs up
// one replica set or standalone node (see docs/sharding.md).
package backup

import (
	"context"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
)

// New returns a slot that backs up the node src reads, as cfg says.
func New(src *Source, cfg slot.Config) (*slot.Slot, error) {
	if err := src.check(); err != nil {
		return nil, err
	}
	return slot.New(src, cfg)
}

// Source is a slot.Source over the collections of a MongoDB node.
// Conn.Client or Conn.URI is required; every other field has a default. Plan starts the oplog
// capture of the backup that follows it and Documents reads the
// collections in step with it, one backup at a time.
type Source struct {
	// Conn says how to reach the node: Client, or URI connected to on
	// first use and disconnected by Close. Its Timeout bounds Plan's check
	// that the server answers (its first ping) and, for a client of URI,
	// each wait to find the server; its OperationTimeout the wait for
	// each later request of the backup (a listing, each batch of a
	// collection or of the oplog), and Close's disconnect, before the
	// backup fails with ErrUnreachable.
	Conn conn.Config

	// ReadPreference for reading collections; default secondary
	// preferred. The oplog is read from the primary.
	ReadPreference *readpref.ReadPref

	// Filter selects namespaces; default every collection of every
	// database but local and config. Exclude those that hold secrets and
	// back them up with package sensitive.
	Filter namespace.Filter

	// Oplog captures the oplog written while the backup runs, as
	// mongodump --oplog does:
	//   - ToggleAuto (default): where the server keeps one;
	//   - ToggleOn: Plan fails with ErrNoOplog where there is none;
	//   - ToggleOff: never.
	// A backup whose oplog rolls over fails with ErrOplogRollover.
	Oplog Toggle

	// UsersAndRoles backs up admin.system.users, .roles and .version,
	// as mongodump does, where the server keeps them:
	//   - ToggleAuto (default): on a full dump (Filter has no Include);
	//   - ToggleOn: also with an Include, those of the databases it holds;
	//   - ToggleOff: never.
	UsersAndRoles Toggle

	oplogNS    string // the oplog's namespace; "" is local.oplog.rs (tests set another)
	batchBytes int64  // the cursor batches' size; 0 is batchBytes (tests set another)
	// beforeGetMore, if set, is called when a collection's cursor has used
	// up its batch and is about to ask for the next (tests set it).
	beforeGetMore func(c archive.Collection, cursorID int64)
	role          *role // if set, what the server answers about its role (tests set it)

	mu      sync.Mutex
	lazy    *mongodb.Lazy     // the client of Conn, made on first use
	capture *oplogCapture     // of the last Plan, nil when it captures none
	authz   map[string]bson.D // of the last Plan: the query that selects the users and roles to back up
}

var _ slot.Source = (*Source)(nil)

// check reports what in s cannot work.
func (s *Source) check() error {
	if s.Conn.Client == nil && s.Conn.URI == "" {
		return errNoConn
	}
	return s.Filter.Validate()
}

// errNoConn: a Source that names no server.
var errNoConn = fmt.Errorf("%w: set Source.Conn: its Client or URI", slot.ErrInvalid)

// client returns Conn.Client, or a client of Conn.URI, connected on first
// use.
func (s *Source) client() (*mongo.Client, error) {
	if s.Conn.Client == nil && s.Conn.URI == "" {
		return nil, errNoConn
	}
	s.mu.Lock()
	if s.lazy == nil {
		s.lazy = mongodb.NewLazy(s.Conn)
	}
	l := s.lazy
	s.mu.Unlock()
	c, err := l.Client()
	if err != nil {
		return nil, fmt.Errorf("backup: connect to the server: %w", err)
	}
	return c, nil
}

// Close disconnects the client that s connected to Conn.URI, if any.
func (s *Source) Close() error {
	s.mu.Lock()
	l := s.lazy
	s.lazy = nil
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.Close(context.Background())
}

// Plan pings the server, fails with ErrSharded for a mongos or a member of
// a sharded cluster, and lists the selected collections with their
// options and indexes, and the data size of their databases. It never
// counts documents: FerretDB answers count with a full scan.
func (s *Source) Plan(ctx context.Context) (slot.Plan, error) {
	if err := s.check(); err != nil {
		return slot.Plan{}, err
	}
	client, err := s.client()
	if err != nil {
		return slot.Plan{}, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, mongodb.Timeout(s.Conn.Timeout))
	defer cancel()
	if err := client.Ping(pingCtx, readpref.PrimaryPreferred()); err != nil {
		return slot.Plan{}, fmt.Errorf("backup: ping the server: %w", mongodb.Classify(err))
	}
	r, err := s.readRole(ctx, client)
	if err != nil {
		return slot.Plan{}, fmt.Errorf("backup: %w", mongodb.Classify(err))
	}
	if err := r.sharded(); err != nil {
		return slot.Plan{}, err
	}
	var build struct {
		Version  string `bson:"version"`
		FerretDB string `bson:"ferretdbVersion"`
	}
	buildErr := mongodb.Ask(ctx, s.Conn.OperationTimeout, func(ctx context.Context) error {
		return client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build)
	})
	p, err := listCollections(ctx, client, s.readPref(), s.Filter, s.authzSelected, buildErr == nil && build.FerretDB != "", s.Conn.OperationTimeout)
	if err != nil {
		return slot.Plan{}, fmt.Errorf("backup: %w", mongodb.Classify(err))
	}
	if buildErr == nil {
		p.ServerVersion = build.Version
	}
	authz, note := s.planAuthz(p)
	if note != "" {
		p.Notes = append(p.Notes, note)
	}
	capture, note, err := s.startOplog(ctx, client, p)
	if err != nil {
		return slot.Plan{}, err
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

func (s *Source) readPref() *readpref.ReadPref {
	if s.ReadPreference == nil {
		return readpref.SecondaryPreferred()
	}
	return s.ReadPreference
}

// Documents streams a collection's documents raw, in natural order,
// without decoding them.
func (s *Source) Documents(ctx context.Context, c archive.Collection, emit func(doc []byte) error) error {
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
	client, err := s.client()
	if err != nil {
		return err
	}
	coll := client.Database(c.DB).Collection(c.Name, options.Collection().SetReadPreference(s.readPref()))
	var cur *mongo.Cursor
	err = mongodb.Ask(ctx, s.Conn.OperationTimeout, func(ctx context.Context) (err error) {
		cur, err = coll.Find(ctx, query)
		return err
	})
	if err != nil {
		return fmt.Errorf("backup: read %s: %w", c.Namespace(), err)
	}
	defer mongodb.CloseCursor(ctx, s.Conn.OperationTimeout, cur)
	sizer := batchSizer{target: s.batchBytes}
	if sizer.target <= 0 {
		sizer.target = batchBytes
	}
	var read int64
	for {
		if s.beforeGetMore != nil && cur.RemainingBatchLength() == 0 && cur.ID() != 0 {
			s.beforeGetMore(c, cur.ID())
		}
		ok, err := mongodb.Next(ctx, s.Conn.OperationTimeout, cur)
		if err != nil || !ok {
			return s.readEnd(ctx, client, c, read, err)
		}
		if err := checkSize(c.Namespace(), cur.Current); err != nil {
			return err
		}
		read++
		sizer.add(len(cur.Current))
		if cur.RemainingBatchLength() == 0 {
			cur.SetBatchSize(sizer.next())
		}
		if err := emit(cur.Current); err != nil {
			return err
		}
	}
}

// batchBytes is about the size of the cursor batches a backup asks for.
// Left to itself, a mongod answers each getMore with up to 16 MiB of
// documents, which the driver holds whole while they are read: 64 MiB for
// four collections read at once, more than the rest of the backup takes.
// A few hundred KiB a batch keep the round trips rare enough not to slow a
// scan.
const batchBytes = 512 << 10

// batchSizer chooses the number of documents of a collection's next batch
// from the average size of those read so far, so that a batch holds about
// target bytes.
type batchSizer struct {
	target      int64
	docs, bytes int64
}

func (b *batchSizer) add(n int) {
	b.docs++
	b.bytes += int64(n)
}

// next returns the batch size, in documents, to ask for next.
func (b *batchSizer) next() int32 {
	avg := max(b.bytes/max(b.docs, 1), 1)
	return int32(min(max(b.target/avg, 1), 1<<20))
}
