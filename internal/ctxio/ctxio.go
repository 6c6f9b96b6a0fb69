// Package ctxio makes a copy stop when its context is done.
package ctxio

import (
	"context"
	"io"
)

// NewReader returns a Reader that reads from r until ctx is done, and then
// fails with ctx's error.
func NewReader(ctx context.Context, r io.Reader) io.Reader { return &reader{ctx: ctx, r: r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c *reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
