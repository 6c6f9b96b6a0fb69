package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/store"
)

// Version is keepslot's version, recorded in every archive it writes.
const Version = "0.1.0"

// Config configures a Mongo backupper. Client or URI, Store and StateDir are
// required; every other field has a default.
type Config struct {
	// Client is a connected MongoDB client (driver v2). If nil, URI is
	// connected to, and disconnected by Close.
	Client *mongo.Client
	URI    string

	// Store is the slot the backup is written to. A store that reports its
	// free space (store.SpaceReporter, as store.Dir does) is held to the
	// rule that twice the data must be free.
	Store store.Store

	// StateDir holds the node's role and the last backup's state. It is
	// created (0700) if missing.
	StateDir string

	// Format and Compression of the archive; default archive.Tar with
	// DefaultCompression (gzip), a .tar.gz that mongorestore can read once
	// decrypted.
	Format      archive.Format
	Compression archive.Compression

	// KDF sets the scrypt cost of the key derivation; nil is cipher's
	// default (N=2^17, r=8, p=1).
	KDF *cipher.Options

	// ReadPreference for reading collections; default secondary preferred,
	// so that on a replica set the backup reads from a secondary.
	ReadPreference *readpref.ReadPref

	// Filter selects namespaces; by default every collection of every
	// database but local and config. Exclude namespaces that hold secrets
	// here and back them up with package sensitive.
	Filter Filter

	// Parallel is how many collections are read at once; default 4.
	Parallel int

	// TempDir is where large collections spill while a tar archive is
	// written; default os.TempDir(). It should be on a filesystem with room
	// for the largest collection.
	TempDir string

	// SpillThreshold is how much of one collection a tar archive holds in
	// memory (per collection read at once) before it spills to TempDir;
	// default 32 MiB. Memory use does not grow with the data beyond
	// Parallel times this.
	SpillThreshold int64

	// Progress, if set, is called as the backup advances (from the
	// backup's goroutines, one call at a time).
	Progress func(Progress)

	// Logger receives the backup's logs; default slog.Default(). Passwords
	// and keys are never logged.
	Logger *slog.Logger
}

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
		client, err := mongo.Connect(options.Client().ApplyURI(cfg.URI).SetServerSelectionTimeout(10 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("backup: %w: %v", ErrUnreachable, err)
		}
		m.client, m.ownClient = client, true
	}
	slot, err := NewSlot(SlotConfig{
		Source:         &MongoSource{Client: m.client, ReadPreference: cfg.ReadPreference, Filter: cfg.Filter},
		Store:          cfg.Store,
		StateDir:       cfg.StateDir,
		Format:         cfg.Format,
		Compression:    cfg.Compression,
		KDF:            cfg.KDF,
		Parallel:       cfg.Parallel,
		TempDir:        cfg.TempDir,
		SpillThreshold: cfg.SpillThreshold,
		Progress:       cfg.Progress,
		Logger:         cfg.Logger,
	})
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

// MongoSource is a Source over the collections of a MongoDB node.
type MongoSource struct {
	Client         *mongo.Client
	ReadPreference *readpref.ReadPref // nil: secondary preferred
	Filter         Filter
}

// Plan pings the server and lists the selected collections with their
// options and indexes, and the data size of their databases. It never
// counts documents: FerretDB answers count with a full scan.
func (s *MongoSource) Plan(ctx context.Context) (Plan, error) {
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Client.Ping(pingCtx, readpref.PrimaryPreferred()); err != nil {
		return Plan{}, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	p, err := listCollections(ctx, s.Client, s.readPref(), s.Filter)
	if err != nil {
		return Plan{}, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	var build struct {
		Version string `bson:"version"`
	}
	if err := s.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err == nil {
		p.ServerVersion = build.Version
	}
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
	coll := s.Client.Database(c.DB).Collection(c.Name, options.Collection().SetReadPreference(s.readPref()))
	cur, err := coll.Find(ctx, bson.D{})
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
