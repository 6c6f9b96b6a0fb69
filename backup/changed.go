package backup

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/mongodb"
)

// readEnd is the end of a collection's read after read documents: err is
// the cursor's failure, nil at its end. A read that lost its cursor, or
// that ended but no longer reads the collection Plan listed (it was dropped,
// or dropped and created again under a new UUID), fails with
// ErrSourceChanged: what was read may be a part of the collection, and a
// backup must not hold it as the whole.
func (s *Source) readEnd(ctx context.Context, client *mongo.Client, c archive.Collection, read int64, err error) error {
	ns := c.Namespace()
	lost := err != nil && mongodb.IsCursorLost(err)
	if err != nil && !lost {
		return fmt.Errorf("backup: read %s: %w", ns, err)
	}
	same, cerr := s.sameCollection(ctx, client, c)
	switch {
	case cerr != nil && lost:
		return fmt.Errorf("%w: the server ended its cursor on %s after %d documents were read (and checking the collection failed: %v); run the backup again: %w", ErrSourceChanged, ns, read, cerr, err)
	case cerr != nil:
		return fmt.Errorf("backup: check that %s is still the collection read: %w", ns, cerr)
	case !same:
		return fmt.Errorf("%w: collection %s was dropped or replaced while it was read (%d documents read); run the backup again, or leave out with Source.Filter a collection that is routinely dropped and created again", ErrSourceChanged, ns, read)
	case lost:
		return fmt.Errorf("%w: the server ended its cursor on %s while it was read (%d documents read): it was killed (killCursors, killOp) or idle past the server's cursor timeout; run the backup again: %w", ErrSourceChanged, ns, read, err)
	}
	return nil
}

// sameCollection reports whether c's database still holds c, the same
// collection (its UUID, where the server gives one, is the one Plan
// listed).
func (s *Source) sameCollection(ctx context.Context, client *mongo.Client, c archive.Collection) (bool, error) {
	var specs []struct {
		Info struct {
			UUID *bson.Binary `bson:"uuid"`
		} `bson:"info"`
	}
	db := client.Database(c.DB, options.Database().SetReadPreference(s.readPref()))
	err := mongodb.Ask(ctx, s.Conn.OperationTimeout, func(ctx context.Context) error {
		cur, err := db.ListCollections(ctx, bson.D{{Key: "name", Value: c.Name}})
		if err != nil {
			return err
		}
		return cur.All(ctx, &specs)
	})
	if err != nil {
		return false, err
	}
	if len(specs) != 1 {
		return false, nil
	}
	if c.UUID == "" || specs[0].Info.UUID == nil {
		return true, nil
	}
	return fmt.Sprintf("%x", specs[0].Info.UUID.Data) == c.UUID, nil
}

// maxIDText bounds how much of a document's _id an error quotes.
const maxIDText = 200

// checkSize fails with ErrDocumentTooLarge for a document of ns that a
// restore could not read: one above archive.MaxDocumentSize, which a
// server that does not hold to MongoDB's 16 MiB (FerretDB) may keep.
func checkSize(ns string, doc bson.Raw) error {
	if len(doc) <= archive.MaxDocumentSize {
		return nil
	}
	id := "(none)"
	if v, err := doc.LookupErr("_id"); err == nil {
		id = v.String()
	}
	if len(id) > maxIDText {
		id = id[:maxIDText] + "…"
	}
	return fmt.Errorf("%w: the document of %s with _id %s is %d bytes, above the %d that a restore reads (MongoDB's 16 MiB limit and 16 KiB of slack): a MongoDB server would refuse it; make it smaller or remove it, or leave the collection out with Source.Filter", ErrDocumentTooLarge, ns, id, len(doc), archive.MaxDocumentSize)
}
