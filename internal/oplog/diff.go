package oplog

import (
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An update of MongoDB 5.0 and later is logged as {$v: 2, diff: {...}}, a
// delta of the document: sections "d" (fields deleted), "u" (fields
// updated), "i" (fields inserted, at the end), "s<field>" (a subdiff of an
// object field, or with a: true of an array field) and, in an array's
// subdiff, "l" (the new length), "u<index>" and "s<index>". diffUpdates
// translates such a delta into update operators that any server applies.

// updateStep is one update of a translated diff: an update document, or
// the truncation of an array to a length (which the operators of every
// server cannot express: the replayer reads the array and sets it).
type UpdateStep struct {
	Update bson.D
	Trunc  *Truncation
}

// truncation cuts the array at path to its first length elements.
type Truncation struct {
	Path   string
	Length int
}

type diffBuilder struct {
	set, unset bson.D
	truncs     []Truncation
}

// diffUpdates translates a $v: 2 diff into steps to apply in order: the
// array truncations, outer arrays first, then one update with $set and
// $unset.
func DiffUpdates(diff bson.Raw) ([]UpdateStep, error) {
	var b diffBuilder
	if err := b.object("", diff); err != nil {
		return nil, err
	}
	var steps []UpdateStep
	for i := range b.truncs {
		steps = append(steps, UpdateStep{Trunc: &b.truncs[i]})
	}
	var u bson.D
	if len(b.set) > 0 {
		u = append(u, bson.E{Key: "$set", Value: b.set})
	}
	if len(b.unset) > 0 {
		u = append(u, bson.E{Key: "$unset", Value: b.unset})
	}
	if len(u) > 0 {
		steps = append(steps, UpdateStep{Update: u})
	}
	return steps, nil
}

// fieldPath joins a field name to a path prefix, refusing names that
// update operators cannot address.
func fieldPath(prefix, name string) (string, error) {
	if name == "" || strings.Contains(name, ".") || strings.HasPrefix(name, "$") {
		return "", fmt.Errorf("the update changes the field %q, which update operators cannot address (a name that is empty, holds a dot or starts with $)", prefix+name)
	}
	return prefix + name, nil
}

// object translates the diff of the object at prefix ("" for the document,
// else a path ending in ".").
func (b *diffBuilder) object(prefix string, diff bson.Raw) error {
	elems, err := diff.Elements()
	if err != nil {
		return fmt.Errorf("diff of %q: %w", prefix, err)
	}
	for _, e := range elems {
		key := e.Key()
		switch {
		case key == "d" || key == "u" || key == "i":
			fields, ok := e.Value().DocumentOK()
			if !ok {
				return fmt.Errorf("diff of %q: section %q is no document", prefix, key)
			}
			fe, err := fields.Elements()
			if err != nil {
				return fmt.Errorf("diff of %q: %w", prefix, err)
			}
			for _, f := range fe {
				p, err := fieldPath(prefix, f.Key())
				if err != nil {
					return err
				}
				if key == "d" {
					b.unset = append(b.unset, bson.E{Key: p, Value: ""})
				} else {
					b.set = append(b.set, bson.E{Key: p, Value: f.Value()})
				}
			}
		case len(key) > 1 && key[0] == 's':
			p, err := fieldPath(prefix, key[1:])
			if err != nil {
				return err
			}
			if err := b.sub(p, e.Value()); err != nil {
				return err
			}
		case key == "b":
			return fmt.Errorf("diff of %q: binary diffs (section \"b\") are not supported", prefix)
		default:
			return fmt.Errorf("diff of %q: unknown section %q", prefix, key)
		}
	}
	return nil
}

// sub translates the subdiff of the field or element at path.
func (b *diffBuilder) sub(path string, v bson.RawValue) error {
	d, ok := v.DocumentOK()
	if !ok {
		return fmt.Errorf("diff of %q: the subdiff is no document", path)
	}
	if Flag(d, "a") {
		return b.array(path, d)
	}
	return b.object(path+".", d)
}

// array translates the diff of the array at path.
func (b *diffBuilder) array(path string, diff bson.Raw) error {
	elems, err := diff.Elements()
	if err != nil {
		return fmt.Errorf("diff of %q: %w", path, err)
	}
	for _, e := range elems {
		key := e.Key()
		switch {
		case key == "a":
		case key == "l":
			n, ok := e.Value().AsInt64OK()
			if !ok || n < 0 {
				return fmt.Errorf("diff of %q: the new length is %s, not a count", path, e.Value())
			}
			b.truncs = append(b.truncs, Truncation{Path: path, Length: int(n)})
		case len(key) > 1 && (key[0] == 'u' || key[0] == 's'):
			idx, err := strconv.ParseUint(key[1:], 10, 31)
			if err != nil {
				return fmt.Errorf("diff of %q: %q is no array index", path, key)
			}
			p := path + "." + strconv.FormatUint(idx, 10)
			if key[0] == 'u' {
				b.set = append(b.set, bson.E{Key: p, Value: e.Value()})
			} else if err := b.sub(p, e.Value()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("diff of %q: unknown array section %q", path, key)
		}
	}
	return nil
}

// Update returns the update that cuts the array at t.Path of doc, nil
// when there is nothing to cut (no such path, no array, or short enough).
func (t Truncation) Update(doc bson.Raw) bson.D {
	v := bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc}
	for _, el := range strings.Split(t.Path, ".") {
		var err error
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			v, err = v.Document().LookupErr(el)
		case bson.TypeArray:
			i, perr := strconv.ParseUint(el, 10, 31)
			if perr != nil {
				return nil
			}
			v, err = v.Array().IndexErr(uint(i))
		default:
			return nil
		}
		if err != nil {
			return nil
		}
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, err := arr.Values()
	if err != nil || len(vals) <= t.Length {
		return nil
	}
	kept := make(bson.A, t.Length)
	for i := range kept {
		kept[i] = vals[i]
	}
	return bson.D{{Key: "$set", Value: bson.D{{Key: t.Path, Value: kept}}}}
}
