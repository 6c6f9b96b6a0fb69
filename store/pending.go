package store

import (
	"context"
	"fmt"
	"sync"
)

// backend is what an implementation supplies to a pending write: where the
// bytes go, how the object is made visible and how a write is thrown away.
type backend interface {
	// write stores the next bytes of the object.
	write(p []byte) error
	// commit makes the object described by info visible. If it fails, the
	// object must not be visible; abort is called next.
	commit(info Info) error
	// abort discards everything written and frees the slot. It is called
	// once, after a failed commit or instead of commit.
	abort() error
}

type pendingState int

const (
	open pendingState = iota
	committed
	aborted
)

// pending implements Pending over a backend, so that every store in this
// package has the same semantics for hashing, contexts and errors.
type pending struct {
	mu    sync.Mutex
	ctx   context.Context
	stop  func() bool // cancels the abort-on-done callback
	name  string
	be    backend
	hp    *hashPipe
	err   error // sticky write error
	state pendingState
	cause error // why the write was aborted, if not by Abort
}

func newPending(ctx context.Context, name string, be backend) *pending {
	p := &pending{ctx: ctx, name: name, be: be}
	p.hp = newHashPipe(be.write)
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
			p.err = fmt.Errorf("store: writing %q: %w", p.name, err)
			return n, p.err
		}
	}
	return n, nil
}

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
		return fail(fmt.Errorf("store: commit of %q: %w", p.name, err))
	}
	md5hex, sha256hex, err := p.hp.finish()
	if err != nil {
		return fail(fmt.Errorf("store: writing %q: %w", p.name, err))
	}
	info := Info{
		Name:    p.name,
		Size:    p.hp.n,
		MD5:     md5hex,
		SHA256:  sha256hex,
		Created: now(),
		Meta:    cloneMeta(meta),
	}
	if err := p.be.commit(info.clone()); err != nil {
		return fail(fmt.Errorf("store: commit of %q: %w", p.name, err))
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
	if err := p.be.abort(); err != nil {
		return fmt.Errorf("store: aborting the write of %q: %w", p.name, err)
	}
	return nil
}

var _ Pending = (*pending)(nil)
