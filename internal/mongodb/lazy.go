package mongodb

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
)

// errNoServer: a Lazy was asked for a client of a conn.Config that holds
// neither a Client nor a URI. Its users check the settings first, with
// their own message; this is the backstop.
var errNoServer = errcode.New(errcode.Invalid, "no MongoDB server to reach: set Conn: its Client or URI")

// Lazy is the client that a conn.Config says: its Client, or a client of
// its URI, connected on first use and disconnected by Close. It is safe
// for concurrent use; after Close, the next Client connects again.
type Lazy struct {
	cfg conn.Config
	mu  sync.Mutex
	own *mongo.Client // connected to cfg.URI, when cfg.Client is nil
}

// NewLazy returns the Lazy of cfg; it connects to nothing yet.
func NewLazy(cfg conn.Config) *Lazy { return &Lazy{cfg: cfg} }

// Client returns cfg.Client, or the client of cfg.URI, which it connects
// to (the driver finds the server on the first request, within
// cfg.Timeout) if it has not yet.
func (l *Lazy) Client() (*mongo.Client, error) {
	if l.cfg.Client != nil {
		return l.cfg.Client, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.own == nil {
		if l.cfg.URI == "" {
			return nil, errNoServer
		}
		c, err := Connect(l.cfg.URI, l.cfg.Timeout)
		if err != nil {
			return nil, err
		}
		l.own = c
	}
	return l.own, nil
}

// Close disconnects the client that l connected to cfg.URI, if any,
// giving the server cfg.OperationTimeout to answer; cfg.Client is its
// owner's to disconnect.
func (l *Lazy) Close(ctx context.Context) error {
	l.mu.Lock()
	c := l.own
	l.own = nil
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	return Ask(ctx, l.cfg.OperationTimeout, c.Disconnect)
}
