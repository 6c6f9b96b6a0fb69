package oplog

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/namespace"
)

// Scope keeps, of the entries of an oplog read in order, the part that
// concerns the namespaces a filter selects: what a backup's capture and
// the slices of package pitr store. It is stateful: it follows the
// databases it has seen writes to and the transactions whose entries it
// has kept, so one Scope reads one run of the oplog, oldest first.
type Scope struct {
	filter namespace.Filter
	dbs    map[string]bool // the databases of the selected namespaces and of the entries kept
	txns   map[string]bool // the transactions whose entries are kept, until they end
	// open keeps what a Scope that starts in the middle of the oplog cannot
	// judge: the drop of any database and the end of a transaction whose
	// first entries it has not seen.
	open bool
}

// NewScope returns a Scope over filter for a capture that starts with the
// databases dbs (those of the collections it holds).
func NewScope(filter namespace.Filter, dbs []string) *Scope {
	s := &Scope{filter: filter, dbs: map[string]bool{}, txns: map[string]bool{}}
	for _, db := range dbs {
		s.dbs[db] = true
	}
	return s
}

// NewOpenScope returns a Scope over filter for a run of the oplog that
// continues an earlier one it knows nothing of: it keeps every drop of a
// database but the server's own, and the commit or abort of any
// transaction whose earlier entries it has not seen, since those may have
// been kept before it started. A restore's replay passes over what does
// not concern it.
func NewOpenScope(filter namespace.Filter) *Scope {
	s := NewScope(filter, nil)
	s.open = true
	return s
}

// Selected reports whether the writes to namespace ns are kept.
func (s *Scope) Selected(ns string) bool { return Replayable(ns) && s.filter.Match(ns) }

// Keep returns the part of an entry that concerns the scope, and whether
// there is one: the writes to the namespaces it selects and the commands on
// them; applyOps (and so transactions) with only their operations on them;
// and the drops of the databases that hold them. So that stock mongorestore
// --oplogReplay, which applies every entry it is given, writes nothing else
// either. The entries of a transaction that spans several stay, emptied if
// need be, to keep its chain whole.
func (s *Scope) Keep(e Entry) (bson.Raw, bool, error) {
	switch e.Op {
	case "i", "u", "d":
		if !s.Selected(e.NS) {
			return nil, false, nil
		}
		s.dbs[e.DB()] = true
		return e.Raw, true, nil
	case "c":
	default:
		return nil, false, nil
	}
	if mongodb.ServerDatabase(e.DB()) {
		return nil, false, nil
	}
	switch name := e.Command(); name {
	case "applyOps":
		return s.filterApplyOps(e)
	case "commitTransaction", "abortTransaction":
		key, _ := e.TxnKey()
		if !s.txns[key] && !s.open {
			return nil, false, nil
		}
		delete(s.txns, key)
		return e.Raw, true, nil
	case "dropDatabase":
		return e.Raw, s.open || len(s.filter.Include) == 0 || s.dbs[e.DB()], nil
	case "renameCollection":
		from, _ := e.O.Lookup("renameCollection").StringValueOK()
		to, _ := e.O.Lookup("to").StringValueOK()
		if !s.Selected(from) && !s.Selected(to) {
			return nil, false, nil
		}
		s.dbs[strings.SplitN(to, ".", 2)[0]] = true
		return e.Raw, true, nil
	default:
		t := e.Target()
		if t == "" || !s.Selected(t) {
			return nil, false, nil
		}
		s.dbs[e.DB()] = true
		return e.Raw, true, nil
	}
}

// filterApplyOps keeps the operations of an applyOps that concern the
// scope. It drops the entry when none does, unless the entry is part of a
// transaction held over several entries (or prepared), which is kept with
// no operations.
func (s *Scope) filterApplyOps(e Entry) (bson.Raw, bool, error) {
	arr, ok := e.O.Lookup("applyOps").ArrayOK()
	if !ok {
		return nil, false, nil
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, false, fmt.Errorf("oplog entry %s: applyOps: %w", e, err)
	}
	kept := bson.A{}
	for _, v := range vals {
		doc, ok := v.DocumentOK()
		if !ok {
			continue
		}
		inner, err := Parse(doc, true)
		if err != nil {
			continue
		}
		if out, ok, err := s.Keep(inner); err != nil {
			return nil, false, err
		} else if ok {
			kept = append(kept, out)
		}
	}
	key, txn := e.TxnKey()
	chained := txn && (Flag(e.O, "partialTxn") || Flag(e.O, "prepare") || !e.PrevTS().IsZero() || s.txns[key])
	switch {
	case len(kept) == 0 && !chained:
		return nil, false, nil
	case len(kept) == len(vals):
	default:
		o, err := ReplaceField(e.O, "applyOps", kept)
		if err != nil {
			return nil, false, err
		}
		raw, err := ReplaceField(e.Raw, "o", o)
		if err != nil {
			return nil, false, err
		}
		e.Raw = raw
	}
	if txn {
		if Flag(e.O, "partialTxn") || Flag(e.O, "prepare") {
			s.txns[key] = true
		} else {
			delete(s.txns, key) // committed by this entry
		}
	}
	return e.Raw, true, nil
}
