package archive

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MaxDocumentSize is the largest BSON document the readers accept: the
// server's 16 MiB limit plus 16 KiB of slack for the internal documents
// (such as oplog entries) that may exceed it slightly.
const MaxDocumentSize = 16<<20 + 16<<10

// maxMetadataSize bounds one metadata.json entry or prelude metadata string.
const maxMetadataSize = 16 << 20

// Collection describes one namespace and its metadata as mongodump records
// it.
type Collection struct {
	DB      string
	Name    string
	Type    string     // "collection" (default when empty), "view", "timeseries"
	UUID    string     // hex, may be empty
	Options bson.Raw   // listCollections "options" (nil = empty document)
	Indexes []bson.Raw // listIndexes output, as returned by the server
}

// Namespace returns "db.name".
func (c Collection) Namespace() string { return c.DB + "." + c.Name }

func (c Collection) typ() string {
	if c.Type == "" {
		return "collection"
	}
	return c.Type
}

func (c Collection) isView() bool { return c.Type == "view" }

// clone returns a deep copy of c, so that callers cannot alias a writer's or
// reader's state.
func (c Collection) clone() Collection {
	out := c
	if c.Options != nil {
		out.Options = append(bson.Raw(nil), c.Options...)
	}
	if c.Indexes != nil {
		out.Indexes = make([]bson.Raw, len(c.Indexes))
		for i, ix := range c.Indexes {
			out.Indexes[i] = append(bson.Raw(nil), ix...)
		}
	}
	return out
}

// emptyDoc is the BSON encoding of {}.
var emptyDoc = bson.Raw{5, 0, 0, 0, 0}

// metadataJSON encodes c as mongodump writes <collection>.metadata.json:
// canonical Extended JSON of {options, indexes, uuid, collectionName, type}.
func (c Collection) metadataJSON() ([]byte, error) {
	opts := c.Options
	if len(opts) == 0 {
		opts = emptyDoc
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("archive: options of %s are not a valid BSON document: %w", c.Namespace(), err)
	}
	indexes := bson.A{}
	for i, ix := range c.Indexes {
		if err := ix.Validate(); err != nil {
			return nil, fmt.Errorf("archive: index %d of %s is not a valid BSON document: %w", i, c.Namespace(), err)
		}
		indexes = append(indexes, ix)
	}
	d := bson.D{
		{Key: "options", Value: opts},
		{Key: "indexes", Value: indexes},
	}
	if c.UUID != "" {
		d = append(d, bson.E{Key: "uuid", Value: c.UUID})
	}
	d = append(d,
		bson.E{Key: "collectionName", Value: c.Name},
		bson.E{Key: "type", Value: c.typ()},
	)
	out, err := bson.MarshalExtJSON(d, true, false)
	if err != nil {
		return nil, fmt.Errorf("archive: encoding metadata of %s: %w", c.Namespace(), err)
	}
	return out, nil
}

// metadataDoc is the shape of a metadata.json document.
type metadataDoc struct {
	Options        bson.Raw   `bson:"options"`
	Indexes        []bson.Raw `bson:"indexes"`
	UUID           string     `bson:"uuid"`
	CollectionName string     `bson:"collectionName"`
	Type           string     `bson:"type"`
}

// parseMetadata decodes a metadata.json document for db; name is the name
// taken from the file name or prelude, used when the JSON has none.
func parseMetadata(db, name string, data []byte) (Collection, error) {
	c := Collection{DB: db, Name: name}
	if len(data) > maxMetadataSize {
		return c, fmt.Errorf("%w: %w: metadata of %s is %d bytes, above the %d limit", ErrCorrupt, ErrTooLarge, c.Namespace(), len(data), maxMetadataSize)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return c, nil
	}
	// The driver's Extended JSON parser loops forever on some malformed
	// input (such as an unknown field whose array lacks its first value):
	// check the JSON first.
	if !json.Valid(data) {
		return c, fmt.Errorf("%w: metadata of %s is not valid JSON", ErrCorrupt, c.Namespace())
	}
	var m metadataDoc
	if err := bson.UnmarshalExtJSON(data, false, &m); err != nil {
		return c, fmt.Errorf("%w: metadata of %s is not valid Extended JSON: %w", ErrCorrupt, c.Namespace(), err)
	}
	if m.CollectionName != "" {
		c.Name = m.CollectionName
	}
	if len(m.Options) > 0 && !isEmptyDoc(m.Options) {
		c.Options = m.Options
	}
	c.Indexes = m.Indexes
	c.UUID = m.UUID
	if m.Type != "" && m.Type != "collection" {
		c.Type = m.Type
	}
	if err := checkNames(c.DB, c.Name); err != nil {
		return c, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return c, nil
}

func isEmptyDoc(r bson.Raw) bool { return len(r) == 5 }

// checkNames rejects database and collection names that MongoDB forbids and
// that could not be laid out as mongodump's directories.
func checkNames(db, name string) error {
	if db == "" || name == "" {
		return fmt.Errorf("%w: empty database or collection name (%q.%q)", ErrUnsafePath, db, name)
	}
	if db == "." || db == ".." || strings.ContainsAny(db, "/\\\x00. \"$") {
		return fmt.Errorf("%w: database name %q is not a valid MongoDB database name", ErrUnsafePath, db)
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("%w: collection name %q contains NUL", ErrUnsafePath, name)
	}
	return nil
}

// escapeName escapes a collection name for use as a file name, as mongodump
// does (URL path escaping: "/" becomes "%2F", "%" becomes "%25").
func escapeName(name string) string { return url.PathEscape(name) }

// unescapeName reverses escapeName.
func unescapeName(file string) (string, error) { return url.PathUnescape(file) }
