package backup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/internal/mongodb"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/slot"
)

// listCollections lists the node's collections that f selects, with their
// options and indexes, and the data size of the databases they live in.
// System collections are left out but those that system selects. Each
// request gets timeout to be answered.
func listCollections(ctx context.Context, client *mongo.Client, rp *readpref.ReadPref, f namespace.Filter, system func(ns string) bool, ferret bool, timeout time.Duration) (slot.Plan, error) {
	var p slot.Plan
	// The data size is dbStats' dataSize, the size of the documents, except
	// on FerretDB, where dbStats counts the documents (a scan as long as
	// the backup's) and listDatabases, which it answers with sizes anyway,
	// gives one as large.
	var dbs []string
	onDisk := map[string]int64{}
	if ferret {
		var res mongo.ListDatabasesResult
		err := mongodb.Ask(ctx, timeout, func(ctx context.Context) (err error) {
			res, err = client.ListDatabases(ctx, bson.D{})
			return err
		})
		if err != nil {
			return p, fmt.Errorf("list databases: %w", err)
		}
		for _, d := range res.Databases {
			dbs = append(dbs, d.Name)
			onDisk[d.Name] = d.SizeOnDisk
		}
	} else {
		err := mongodb.Ask(ctx, timeout, func(ctx context.Context) (err error) {
			dbs, err = client.ListDatabaseNames(ctx, bson.D{})
			return err
		})
		if err != nil {
			return p, fmt.Errorf("list databases: %w", err)
		}
	}
	for _, name := range dbs {
		if mongodb.ServerDatabase(name) {
			continue
		}
		db := client.Database(name, options.Database().SetReadPreference(rp))
		cols, err := listDatabase(ctx, db, f, system, timeout)
		if err != nil {
			return p, err
		}
		if len(cols) == 0 {
			continue
		}
		p.Collections = append(p.Collections, cols...)
		if ferret {
			p.DataSize += onDisk[name]
			continue
		}
		var stats struct {
			DataSize float64 `bson:"dataSize"`
		}
		err = mongodb.Ask(ctx, timeout, func(ctx context.Context) error {
			return db.RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}}).Decode(&stats)
		})
		if err != nil {
			return p, fmt.Errorf("dbStats on %s: %w", name, err)
		}
		p.DataSize += int64(stats.DataSize)
	}
	return p, nil
}

func listDatabase(ctx context.Context, db *mongo.Database, f namespace.Filter, system func(ns string) bool, timeout time.Duration) ([]archive.Collection, error) {
	var specs []struct {
		Name    string   `bson:"name"`
		Type    string   `bson:"type"`
		Options bson.Raw `bson:"options"`
		Info    struct {
			UUID *bson.Binary `bson:"uuid"`
		} `bson:"info"`
	}
	err := mongodb.Ask(ctx, timeout, func(ctx context.Context) error {
		cur, err := db.ListCollections(ctx, bson.D{})
		if err != nil {
			return err
		}
		return cur.All(ctx, &specs)
	})
	if err != nil {
		return nil, fmt.Errorf("list collections of %s: %w", db.Name(), err)
	}
	var cols []archive.Collection
	for _, s := range specs {
		ns := db.Name() + "." + s.Name
		if sys := strings.HasPrefix(s.Name, "system."); sys && !system(ns) || !sys && !f.Match(ns) {
			continue
		}
		c := archive.Collection{DB: db.Name(), Name: s.Name, Type: s.Type, Options: s.Options}
		if c.Type == "" {
			c.Type = "collection"
		}
		if s.Info.UUID != nil {
			c.UUID = fmt.Sprintf("%x", s.Info.UUID.Data)
		}
		if c.Type != "view" {
			if c.Indexes, err = listIndexes(ctx, db.Collection(s.Name), timeout); err != nil {
				return nil, err
			}
		}
		cols = append(cols, c)
	}
	return cols, nil
}

func listIndexes(ctx context.Context, coll *mongo.Collection, timeout time.Duration) ([]bson.Raw, error) {
	var idx []bson.Raw
	err := mongodb.Ask(ctx, timeout, func(ctx context.Context) error {
		cur, err := coll.Indexes().List(ctx)
		if err != nil {
			return err
		}
		return cur.All(ctx, &idx)
	})
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s.%s: %w", coll.Database().Name(), coll.Name(), err)
	}
	return idx, nil
}
