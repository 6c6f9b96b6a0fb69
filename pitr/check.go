package pitr

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/internal/ctxio"
	"github.com/keepslot/keepslot/internal/oplog"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/store"
)

// Refused is an object on the remote that a restore or the slicer left
// out: it does not authenticate, its name or metadata misdescribe it, or
// it belongs to another node or chain. Error says why and names it.
type Refused struct {
	Key   string `json:"key"`
	Error string `json:"error"`
	err   error
}

// checker authenticates what a restore may use: the base backups and the
// slices, as their own authenticated records say, of node only.
type checker struct {
	remote  store.Remote
	node    string
	ring    *cipher.Keyring
	formats []archive.Format
	comps   []archive.Compression
	dir     string
	refused []Refused
}

func (c *checker) refuse(key string, err error) {
	c.refused = append(c.refused, Refused{Key: key, Error: err.Error(), err: err})
}

// nodeOf is the node name of a node prefix, "Prefix/Node/".
func nodeOf(prefix string) string { return path.Base(strings.TrimSuffix(prefix, "/")) }

// base returns the newest base backup whose consistency point, as its
// own manifest says, is before limit and that is this node's: it reads
// each candidate whole (the manifest ends the archive) and refuses, and
// passes over, one of another node, one whose manifest names no node, and
// one that does not authenticate. A wrong password fails at once.
func (c *checker) base(ctx context.Context, bases []Base, limit bson.Timestamp) (*Base, error) {
	for i := len(bases) - 1; i >= 0; i-- {
		b := bases[i]
		if !b.Oplog.End.Before(limit) {
			continue
		}
		m, err := c.manifest(ctx, b.Key)
		if errors.Is(err, cipher.ErrWrongPassword) || ctx.Err() != nil {
			return nil, err
		}
		switch {
		case err != nil:
			c.refuse(b.Key, err)
			continue
		case m.Node == "":
			c.refuse(b.Key, fmt.Errorf("%w: the base backup %s records no node: it was written before keepslot recorded the node in a backup's manifest, or in the archive format; it cannot be told from another node's, so a point-in-time restore does not start from it (restore it with a plain restore, or take a new base backup)", ErrForeign, b.Key))
			continue
		case m.Node != c.node:
			c.refuse(b.Key, fmt.Errorf("%w: the base backup %s was written by the node %q, not %q: someone copied it into this node's prefix", ErrForeign, b.Key, m.Node, c.node))
			continue
		case m.Oplog == nil:
			c.refuse(b.Key, fmt.Errorf("%w: the base backup %s captured no oplog, though its metadata says it did", ErrForeign, b.Key))
			continue
		case m.Oplog.OplogSpan != b.Oplog:
			c.refuse(b.Key, fmt.Errorf("%w: the base backup %s is consistent as of %s, its metadata says %s", restore.ErrCorrupt, b.Key, oplog.FormatTS(m.Oplog.End), oplog.FormatTS(b.Oplog.End)))
			continue
		}
		return &b, nil
	}
	return nil, nil
}

// manifest reads the base backup at key whole and returns its manifest.
func (c *checker) manifest(ctx context.Context, key string) (*archive.Manifest, error) {
	obj, err := c.remote.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("pitr: open the base backup %s: %w", key, err)
	}
	defer obj.Close()
	plain, err := c.ring.NewReader(obj, obj.Info().Size)
	if errors.Is(err, cipher.ErrWrongPassword) {
		return nil, fmt.Errorf("pitr: the base backup %s: %w", key, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the base backup %s: %w", restore.ErrCorrupt, key, err)
	}
	ar, err := archive.Open(ctxio.NewReader(ctx, plain), &archive.OpenOptions{Formats: c.formats, Compressions: c.comps})
	if err != nil {
		return nil, fmt.Errorf("%w: the base backup %s: %w", restore.ErrCorrupt, key, err)
	}
	if cl, ok := ar.(io.Closer); ok {
		defer cl.Close()
	}
	for {
		if _, err = ar.Next(); err != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != io.EOF {
		return nil, fmt.Errorf("%w: the base backup %s: %w", restore.ErrCorrupt, key, err)
	}
	return ar.Manifest(), nil
}

// slices downloads the listed slices that a restore from base up to limit
// may use, or that record an entry lost before limit, checks each whole,
// and returns those that authenticate and are this node's, as their
// records say, each with its file; it refuses the others.
func (c *checker) slices(ctx context.Context, listed []Slice, base *Base, limit bson.Timestamp) ([]Slice, map[string]string, error) {
	var out []Slice
	files := map[string]string{}
	from := next(base.Oplog.End)
	for _, s := range listed {
		use := s.From.Before(limit) && from.Before(s.Until)
		for _, g := range s.Lost {
			use = use || g.From.Before(limit) && base.Oplog.End.Before(g.From)
		}
		if !use {
			continue
		}
		f, err := os.CreateTemp(c.dir, "keepslot-slice-*")
		if err != nil {
			return out, files, fmt.Errorf("pitr: a file for the slice %s: %w", s.Key, err)
		}
		files[s.Key] = f.Name()
		a, err := c.slice(ctx, s, f)
		f.Close()
		switch {
		case ctx.Err() != nil:
			return out, files, ctx.Err()
		case errors.Is(err, cipher.ErrWrongPassword), errors.Is(err, store.ErrUnreachable):
			return out, files, err
		case errors.Is(err, store.ErrNotFound):
			continue // deleted since the listing: as if not listed
		case err != nil:
			c.refuse(s.Key, err)
			continue
		}
		out = append(out, a)
	}
	return out, files, nil
}

// slice downloads s into f and checks it.
func (c *checker) slice(ctx context.Context, s Slice, f *os.File) (Slice, error) {
	sum, n, err := download(ctx, c.remote, s, f)
	if err != nil {
		return Slice{}, err
	}
	s.SHA256, s.Size = sum, n
	a, err := entries(ctx, s, f, n, c.ring.NewReader, func(oplog.Entry) error { return nil })
	if err != nil {
		return Slice{}, err
	}
	if err := belongs(a, c.node); err != nil {
		return Slice{}, err
	}
	return a, nil
}

// belongs fails with ErrForeign unless the authenticated slice a is
// node's.
func belongs(a Slice, node string) error {
	switch {
	case a.Node == "":
		return fmt.Errorf("%w: the slice %s records no node: it was written before keepslot bound slices to their node, and cannot be told from another node's; take a new base backup", ErrForeign, a.Key)
	case a.Node != node:
		return fmt.Errorf("%w: the slice %s holds the oplog of the node %q, not %q: someone copied it into this node's folder", ErrForeign, a.Key, a.Node, node)
	}
	return nil
}

// plan picks from the authenticated slices those that continue base up to
// limit: at each step the slice that continues the chain of the one
// before (its record names that slice's end and hash), else the covering
// slice that reaches furthest. A slice that claims to continue the one
// before but names another's hash is of another chain: a restore refuses
// rather than mix the two. It returns nil when the slices do not reach
// limit.
func plan(base *Base, authentic []Slice, limit bson.Timestamp) ([]Slice, error) {
	slices.SortFunc(authentic, func(a, b Slice) int {
		return cmp.Or(a.From.Compare(b.From), a.Until.Compare(b.Until), cmp.Compare(a.Key, b.Key))
	})
	out := []Slice{}
	cur := next(base.Oplog.End)
	for cur.Before(limit) {
		i, cont := -1, false
		for j, s := range authentic {
			if cur.Before(s.From) || !cur.Before(s.Until) {
				continue
			}
			sc := len(out) > 0 && continues(s, out[len(out)-1])
			if i < 0 || sc && !cont || sc == cont && authentic[i].Until.Before(s.Until) {
				i, cont = j, sc
			}
		}
		if i < 0 {
			return nil, nil
		}
		s := authentic[i]
		if len(out) > 0 && !cont {
			p := out[len(out)-1]
			if s.Prev == p.Until && s.PrevSHA256 != "" {
				return nil, fmt.Errorf("%w: the slice %s continues another slice that ends at %s than %s (SHA-256 %s, its record says %s): they are of different chains; a restore does not mix them",
					ErrForeign, s.Key, oplog.FormatTS(p.Until), p.Key, p.SHA256, s.PrevSHA256)
			}
		}
		if len(out) == 0 && s.Base != "" && s.Prev == next(base.Oplog.End) && s.Base != path.Base(base.Key) {
			return nil, fmt.Errorf("%w: the slice %s continues the base backup %s, not %s, though both are consistent as of %s",
				ErrForeign, s.Key, s.Base, base.Key, oplog.FormatTS(base.Oplog.End))
		}
		out = append(out, s)
		cur = s.Until
	}
	return out, nil
}

// continues reports whether s is the slice after p in p's chain.
func continues(s, p Slice) bool {
	return s.Prev == p.Until && s.PrevSHA256 != "" && s.PrevSHA256 == p.SHA256
}

// lost returns the entries after the base's point and before limit that
// the slices record as lost.
func lost(base *Base, authentic []Slice, limit bson.Timestamp) []Gap {
	var out []Gap
	for _, s := range authentic {
		for _, g := range s.Lost {
			if base.Oplog.End.Before(g.From) && g.From.Before(limit) {
				out = append(out, g)
			}
		}
	}
	slices.SortFunc(out, func(a, b Gap) int { return a.From.Compare(b.From) })
	return out
}

// refusedErr is the error of a restore that the refused objects leave
// without what it needs: it matches the first refusal's sentinel, and
// names them all.
func (c *checker) refusedErr(why error) error {
	if len(c.refused) == 0 {
		return why
	}
	var b strings.Builder
	b.WriteString("pitr: objects on the remote were refused, and what is left does not reach the target:")
	for _, r := range c.refused {
		fmt.Fprintf(&b, " %s;", r.Error)
	}
	fmt.Fprintf(&b, " %v", why)
	return &coded{msg: b.String(), err: errors.Join(c.refused[0].err, why)}
}

// download copies the slice s from the remote into f and returns the
// SHA-256 and the size of what it copied.
func download(ctx context.Context, remote store.Remote, s Slice, f *os.File) (string, int64, error) {
	obj, err := remote.Open(ctx, s.Key)
	if errors.Is(err, store.ErrNotFound) {
		return "", 0, fmt.Errorf("%w: the slice %s is no longer on the remote: %w", ErrNotCovered, s.Key, err)
	}
	if err != nil {
		return "", 0, fmt.Errorf("pitr: open the slice %s: %w", s.Key, err)
	}
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxio.NewReader(ctx, obj))
	if err != nil {
		return "", 0, fmt.Errorf("pitr: download the slice %s: %w", s.Key, err)
	}
	if n != obj.Info().Size {
		return "", 0, fmt.Errorf("%w: %s: %d bytes read, %d stored", ErrCorruptSlice, s.Key, n, obj.Info().Size)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
