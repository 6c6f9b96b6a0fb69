package slot

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/keepslot/keepslot/internal/ctxio"
	"github.com/keepslot/keepslot/store"
)

// retrieve copies the object in s to w, checking ctx between blocks.
func retrieve(ctx context.Context, s store.Store, w io.Writer) (store.Info, error) {
	obj, err := open(ctx, s)
	if err != nil {
		return store.Info{}, err
	}
	defer obj.Close()
	info := obj.Info()
	if _, err := io.Copy(w, ctxio.NewReader(ctx, io.NewSectionReader(obj, 0, info.Size))); err != nil {
		return info, fmt.Errorf("slot: retrieve the backup: %w", err)
	}
	return info, nil
}

// open opens the object in s, with the error a user reads when there is none.
func open(ctx context.Context, s store.Store) (store.Object, error) {
	obj, err := s.Open(ctx)
	if errors.Is(err, store.ErrEmpty) {
		return nil, fmt.Errorf("%w: no backup found; start one first", err)
	}
	if err != nil {
		return nil, fmt.Errorf("slot: open the backup: %w", err)
	}
	return obj, nil
}
