package restore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/internal/oplog"
)

// command applies a command entry.
func (p *replayer) command(ctx context.Context, e oplog.Entry) error {
	name := e.Command()
	switch name {
	case "applyOps":
		if key, ok := e.TxnKey(); ok {
			return p.transaction(ctx, e, key)
		}
		ops, err := nestedOps(e)
		if err != nil {
			return err
		}
		return p.applyAll(ctx, ops)
	case "commitTransaction":
		key, ok := e.TxnKey()
		buf := p.txns[key]
		if !ok || buf == nil || !buf.prepared {
			p.rep.Incomplete++
			p.r.note("a transaction committed at %s was not replayed: its prepare entry is not in the oplog (it began before the capture)", oplog.FormatTS(e.TS))
			return nil
		}
		delete(p.txns, key)
		p.rep.Transactions++
		return p.applyAll(ctx, buf.ops)
	case "abortTransaction":
		if key, ok := e.TxnKey(); ok {
			delete(p.txns, key)
		}
		return nil
	case "dropDatabase":
		return p.dropDatabase(ctx, e.DB())
	case "renameCollection":
		return p.rename(ctx, e)
	case "create", "drop", "createIndexes", "commitIndexBuild", "dropIndexes", "deleteIndexes", "collMod":
		return p.collCommand(ctx, e, name)
	case "startIndexBuild", "abortIndexBuild":
		p.rep.Skipped++ // commitIndexBuild builds the indexes
		return nil
	}
	p.rep.Skipped++
	p.skip[name]++
	return nil
}

// collCommand applies a command on one collection: create, drop,
// createIndexes (and commitIndexBuild), dropIndexes and collMod, tolerating
// what a replay onto data the backup holds in a later state meets: a
// collection that exists or is gone, an index that exists or is gone.
func (p *replayer) collCommand(ctx context.Context, e oplog.Entry, name string) error {
	from := e.Target()
	to, ok := p.selected(from)
	if !ok {
		p.rep.Skipped++
		return nil
	}
	p.rep.Commands++
	if name == "create" {
		p.known[from] = true
	}
	if name == "drop" {
		delete(p.known, from)
	}
	if p.r.opts.DryRun {
		return nil
	}
	coll, err := p.coll(to)
	if err != nil {
		return err
	}
	db := coll.Database()
	var cmd bson.D
	var tolerate []int
	switch name {
	case "create":
		cmd = append(bson.D{{Key: "create", Value: coll.Name()}}, oplog.WithoutKeys(e.O, "create", "idIndex")...)
		tolerate = []int{mongodb.CodeNamespaceExists}
	case "drop":
		if err := mongodb.Ask(ctx, p.r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return coll.Drop(ctx) }); err != nil {
			return fmt.Errorf("drop %s: %w", to, err)
		}
		return nil
	case "createIndexes", "commitIndexBuild":
		var raws []bson.Raw
		if name == "createIndexes" {
			spec, _ := bson.Marshal(oplog.WithoutKeys(e.O, "createIndexes"))
			raws = []bson.Raw{spec}
		} else {
			specs, _ := e.O.Lookup("indexes").ArrayOK()
			vals, _ := specs.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					raws = append(raws, d)
				}
			}
		}
		specs := indexSpecs(raws)
		if len(specs) == 0 {
			return nil
		}
		cmd = bson.D{{Key: "createIndexes", Value: coll.Name()}, {Key: "indexes", Value: specs}}
		tolerate = []int{mongodb.CodeIndexOptionsConflict, mongodb.CodeIndexKeySpecConflict}
	case "dropIndexes", "deleteIndexes":
		cmd = bson.D{{Key: "dropIndexes", Value: coll.Name()}, {Key: "index", Value: e.O.Lookup("index")}}
		tolerate = []int{mongodb.CodeIndexNotFound, mongodb.CodeNamespaceNotFound}
	case "collMod":
		cmd = append(bson.D{{Key: "collMod", Value: coll.Name()}}, oplog.WithoutKeys(e.O, "collMod")...)
		tolerate = []int{mongodb.CodeNamespaceNotFound}
	}
	run := func(ctx context.Context) error { return db.RunCommand(ctx, cmd).Err() }
	if name == "createIndexes" || name == "commitIndexBuild" {
		err = mongodb.AskLong(ctx, p.r.client, p.r.opts.Conn.OperationTimeout, run) // an index build takes as long as it takes
	} else {
		err = mongodb.Ask(ctx, p.r.opts.Conn.OperationTimeout, run)
	}
	switch {
	case err == nil:
		return nil
	case slices.ContainsFunc(tolerate, func(c int) bool { return mongodb.IsCode(err, c) }):
		return nil
	case name == "collMod" && (mongodb.IsCode(err, mongodb.CodeCommandNotFound) || mongodb.IsCode(err, mongodb.CodeNotImplemented)):
		p.rep.Commands--
		p.rep.Skipped++
		p.skip[name]++
		return nil
	}
	return fmt.Errorf("%s on %s: %w", name, to, err)
}

// dropDatabase drops, of database db, the collections the replay knows of
// and selects: a database drop does not reach beyond the restore's own
// namespaces, wherever renames put them.
func (p *replayer) dropDatabase(ctx context.Context, db string) error {
	var drop []string
	for from := range p.known {
		if strings.HasPrefix(from, db+".") {
			drop = append(drop, from)
		}
	}
	sort.Strings(drop)
	for _, from := range drop {
		delete(p.known, from)
		to, ok := p.selected(from)
		if !ok {
			continue
		}
		p.rep.Commands++
		if p.r.opts.DryRun {
			continue
		}
		coll, err := p.coll(to)
		if err != nil {
			return err
		}
		if err := mongodb.Ask(ctx, p.r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return coll.Drop(ctx) }); err != nil {
			return fmt.Errorf("drop %s: %w", to, err)
		}
	}
	return nil
}

// rename replays a renameCollection. Between two selected namespaces it
// renames their targets; out of the selection it drops the source's target;
// into the selection from outside it cannot (the documents are not in the
// restore), which the Report notes.
func (p *replayer) rename(ctx context.Context, e oplog.Entry) error {
	from, _ := e.O.Lookup("renameCollection").StringValueOK()
	toNS, _ := e.O.Lookup("to").StringValueOK()
	dropTarget := false
	if v, err := e.O.LookupErr("dropTarget"); err == nil {
		b, isBool := v.BooleanOK()
		dropTarget = b || !isBool && v.Type != bson.TypeNull // a UUID: the target to drop
	}
	fromTo, fromOK := p.selected(from)
	toTo, toOK := p.selected(toNS)
	switch {
	case !fromOK && !toOK:
		p.rep.Skipped++
		return nil
	case !fromOK:
		p.rep.Skipped++
		p.r.note("the rename of %s into %s was not replayed: %s is not restored, so %s misses its documents", from, toNS, from, toTo)
		return nil
	}
	p.rep.Commands++
	delete(p.known, from)
	if toOK {
		p.known[toNS] = true
	}
	if p.r.opts.DryRun {
		return nil
	}
	src, err := p.coll(fromTo)
	if err != nil {
		return err
	}
	if !toOK {
		if err := mongodb.Ask(ctx, p.r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return src.Drop(ctx) }); err != nil {
			return fmt.Errorf("drop %s: %w", fromTo, err)
		}
		return nil
	}
	if _, err := p.coll(toTo); err != nil {
		return err
	}
	err = mongodb.Ask(ctx, p.r.opts.Conn.OperationTimeout, func(ctx context.Context) error {
		return p.r.client.Database("admin").RunCommand(ctx, bson.D{
			{Key: "renameCollection", Value: fromTo}, {Key: "to", Value: toTo}, {Key: "dropTarget", Value: dropTarget},
		}).Err()
	})
	switch {
	case err == nil, mongodb.IsCode(err, mongodb.CodeNamespaceNotFound): // already renamed
		return nil
	case mongodb.IsCode(err, mongodb.CodeNamespaceExists):
		// Both are in the backup: the target as renamed, the source as it
		// was before; the source is gone by the end.
		if err := mongodb.Ask(ctx, p.r.opts.Conn.OperationTimeout, func(ctx context.Context) error { return src.Drop(ctx) }); err != nil {
			return fmt.Errorf("drop %s: %w", fromTo, err)
		}
		return nil
	}
	return fmt.Errorf("rename %s to %s: %w", fromTo, toTo, err)
}
