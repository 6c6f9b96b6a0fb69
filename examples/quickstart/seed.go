package main

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// seed fills three small databases with documents of the common BSON types
// (strings, numbers, dates, nested documents, arrays, binary, ObjectIDs)
// and a few indexes. It avoids what FerretDB v1 cannot store: decimal128
// values and arrays directly inside arrays.
func (q *quickstart) seed(ctx context.Context) error {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	collections := []struct {
		db, coll string
		n        int
		doc      func(i int) bson.D
		indexes  []mongo.IndexModel
	}{
		{"shop", "customers", 1000, func(i int) bson.D {
			return bson.D{
				{Key: "_id", Value: i},
				{Key: "email", Value: fmt.Sprintf("customer%04d@example.com", i)},
				{Key: "name", Value: fmt.Sprintf("Customer %d", i)},
				{Key: "since", Value: base.Add(time.Duration(i) * time.Hour)},
				{Key: "address", Value: bson.D{{Key: "city", Value: []string{"Lyon", "Porto", "Graz"}[i%3]}, {Key: "zip", Value: fmt.Sprintf("%05d", i*7)}}},
				{Key: "tags", Value: bson.A{"retail", fmt.Sprintf("tier%d", i%4)}},
			}
		}, []mongo.IndexModel{
			{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)},
			{Keys: bson.D{{Key: "address.city", Value: 1}, {Key: "since", Value: -1}}},
		}},
		{"shop", "orders", 3000, func(i int) bson.D {
			return bson.D{
				{Key: "_id", Value: bson.NewObjectID()},
				{Key: "customer", Value: i % 1000},
				{Key: "total", Value: float64(i%500) + 0.99},
				{Key: "items", Value: bson.A{
					bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%d", i%97)}, {Key: "qty", Value: int32(1 + i%5)}},
					bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%d", i%89)}, {Key: "qty", Value: int64(1)}},
				}},
				{Key: "placed", Value: base.Add(time.Duration(i) * time.Minute)},
				{Key: "paid", Value: i%7 != 0},
			}
		}, []mongo.IndexModel{
			{Keys: bson.D{{Key: "customer", Value: 1}, {Key: "placed", Value: -1}}},
		}},
		{"blog", "posts", 300, func(i int) bson.D {
			return bson.D{
				{Key: "_id", Value: fmt.Sprintf("post-%03d", i)},
				{Key: "title", Value: fmt.Sprintf("Post number %d", i)},
				{Key: "body", Value: fmt.Sprintf("Lorem ipsum %d, dolor sit amet. ", i)},
				{Key: "draft", Value: nil},
				{Key: "cover", Value: bson.Binary{Subtype: 0, Data: []byte{0x89, 'P', 'N', 'G', byte(i)}}},
			}
		}, []mongo.IndexModel{
			{Keys: bson.D{{Key: "title", Value: 1}}},
		}},
		{"metrics", "events", 2000, func(i int) bson.D {
			return bson.D{
				{Key: "at", Value: base.Add(time.Duration(i) * time.Second)},
				{Key: "kind", Value: []string{"login", "view", "buy"}[i%3]},
				{Key: "ms", Value: int64(i * 13 % 977)},
			}
		}, nil},
	}

	q.counts = map[string]int64{}
	for _, c := range collections {
		db := q.prefix + c.db
		coll := q.client.Database(db).Collection(c.coll)
		docs := make([]any, c.n)
		for i := range docs {
			docs[i] = c.doc(i)
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return fmt.Errorf("seed %s.%s: %w", db, c.coll, err)
		}
		if len(c.indexes) > 0 {
			if _, err := coll.Indexes().CreateMany(ctx, c.indexes); err != nil {
				return fmt.Errorf("index %s.%s: %w", db, c.coll, err)
			}
		}
		q.counts[db+"."+c.coll] = int64(c.n)
		fmt.Printf("  %-32s %6d documents, %d indexes\n", db+"."+c.coll, c.n, len(c.indexes))
	}
	return nil
}
