package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/keepslot/keepslot/internal/chunk"
)

// Backend is the byte sink of one write to a store: where the bytes go, how
// the object is made visible and how the write is thrown away. A store's
// Create takes the slot, makes a Backend for the write and returns
// NewPending over it; NewPending supplies the rest (hashing, contexts, the
// state machine and its errors), so every store behaves the same.
//
// NewPending calls a Backend's methods one at a time, never concurrently.
type Backend interface {
	// Append stores the next bytes of the object. p is only valid during the
	// call: a Backend that keeps bytes must copy them. After Append fails,
	// the write is aborted.
	Append(p []byte) error

	// Commit makes the object described by info visible, atomically. If it
	// fails, the object must not be visible; Abort is called next.
	Commit(info Info) error

	// Abort discards everything appended and frees the slot. It is called
	// once, after a failed Commit or instead of Commit, and never after a
	// successful Commit.
	Abort() error
}

type pendingState int

const (
	open pendingState = iota
	committed
	aborted
)

// pending implements Pending over a Backend.
type pending struct {
	mu    sync.Mutex
	ctx   context.Context
	stop  func() bool // cancels the abort-on-done callback
	name  string
	be    Backend
	hp    *hashPipe
	err   error // sticky write error
	state pendingState
	cause error // why the write was aborted, if not by Abort
}

// NewPending returns the Pending of a write of the object name through b.
// Bytes written are hashed (MD5 and SHA-256) and handed to b.Append in
// chunks of up to 1 MiB; Commit validates the metadata, fills in the Info
// and calls b.Commit; Abort, a failed Commit or the end of ctx calls
// b.Abort. The caller checks name with CheckName before it takes the slot.
func NewPending(ctx context.Context, name string, b Backend) Pending {
	p := &pending{ctx: ctx, name: name, be: b}
	p.hp = newHashPipe(b.Append)
	p.stop = context.AfterFunc(ctx, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.state == open {
			p.abortLocked(fmt.Errorf("store: write of %q abandoned: %w", p.name, context.Cause(ctx)))
		}
	})
	return p
}

// closedErr is the error for a call on a pending write that has ended.
func (p *pending) closedErr() error {
	if p.cause != nil {
		return p.cause
	}
	return ErrClosed
}

// Write implements io.Writer.
func (p *pending) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != open {
		return 0, p.closedErr()
	}
	if p.err != nil {
		return 0, p.err
	}
	n := 0
	for len(b) > 0 {
		if err := p.ctx.Err(); err != nil {
			p.abortLocked(fmt.Errorf("store: write of %q abandoned: %w", p.name, context.Cause(p.ctx)))
			return n, p.cause
		}
		k := min(len(b), chunkSize)
		k, err := p.hp.write(b[:k])
		n += k
		b = b[k:]
		if err != nil {
			p.err = p.wrap("writing", err)
			p.abortLocked(p.err)
			return n, p.err
		}
	}
	return n, nil
}

// WriteChunk writes c.B as Write would, without copying it: the cipher
// hands its sealed chunks over this way (see internal/chunk). It takes over
// the caller's reference to c, also when it fails.
func (p *pending) WriteChunk(c *chunk.Chunk) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state != open:
		c.Release()
		return p.closedErr()
	case p.err != nil:
		c.Release()
		return p.err
	}
	if err := p.ctx.Err(); err != nil {
		c.Release()
		p.abortLocked(fmt.Errorf("store: write of %q abandoned: %w", p.name, context.Cause(p.ctx)))
		return p.cause
	}
	if err := p.hp.writeChunk(c); err != nil {
		p.err = p.wrap("writing", err)
		p.abortLocked(p.err)
		return p.err
	}
	return nil
}

var _ chunk.Sink = (*pending)(nil)

// Commit implements Pending.
func (p *pending) Commit(meta map[string]string) (Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != open {
		return Info{}, p.closedErr()
	}
	fail := func(err error) (Info, error) {
		p.abortLocked(nil)
		return Info{}, err
	}
	if p.err != nil {
		return fail(p.err)
	}
	if err := p.ctx.Err(); err != nil {
		return fail(fmt.Errorf("store: commit of %q abandoned: %w", p.name, context.Cause(p.ctx)))
	}
	if err := validMeta(meta); err != nil {
		return fail(p.wrap("commit of", err))
	}
	md5hex, sha256hex, err := p.hp.finish()
	if err != nil {
		return fail(p.wrap("writing", err))
	}
	info := Info{
		Name:    p.name,
		Size:    p.hp.n,
		MD5:     md5hex,
		SHA256:  sha256hex,
		Created: now(),
		Meta:    cloneMeta(meta),
	}
	if err := p.be.Commit(info.clone()); err != nil {
		return fail(p.wrap("commit of", err))
	}
	p.state = committed
	p.stop()
	return info, nil
}

// Abort implements Pending.
func (p *pending) Abort() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != open {
		return nil
	}
	return p.abortLocked(nil)
}

func (p *pending) abortLocked(cause error) error {
	p.state = aborted
	p.cause = cause
	p.stop()
	p.hp.abort()
	if err := p.be.Abort(); err != nil {
		return p.wrap("aborting the write of", err)
	}
	return nil
}

// wrap says what the write was doing when err happened: after err when it
// is one of this package's, which says first what happened, and before it
// otherwise, so that the text names the package once.
func (p *pending) wrap(doing string, err error) error {
	if own(err) {
		return fmt.Errorf("%w (%s %q)", err, doing, p.name)
	}
	return fmt.Errorf("store: %s %q: %w", doing, p.name, err)
}

var _ Pending = (*pending)(nil)
