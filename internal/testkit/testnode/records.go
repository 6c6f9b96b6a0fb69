package testnode

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Records generates orders as a shop keeps them: about 400 bytes of BSON
// each, with a customer, an address, one to four items and a note of
// words, the values drawn from short lists and a seeded generator. Unlike
// [Synthetic]'s, which are half random bytes, they compress about as much
// as real application data does (around 10x with gzip), so they are what
// compression is measured on. A Records is not safe for concurrent use.
type Records struct {
	rng  *rand.Rand
	seq  uint64
	base time.Time
}

// NewRecords returns a generator of records; seed chooses the sequence
// (equal seeds give equal documents).
func NewRecords(seed uint64) *Records {
	return &Records{
		rng:  rand.New(rand.NewPCG(seed, 0x5eed)),
		base: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC),
	}
}

// Next returns the next record.
func (r *Records) Next() []byte {
	rng := r.rng
	r.seq++
	pick := func(s []string) string { return s[rng.IntN(len(s))] }

	var id bson.ObjectID
	placed := r.base.Add(time.Duration(r.seq)*37*time.Second + time.Duration(rng.IntN(30))*time.Second)
	binary.BigEndian.PutUint32(id[0:4], uint32(placed.Unix()))
	binary.BigEndian.PutUint64(id[4:12], rng.Uint64())

	first, last := pick(firstNames), pick(lastNames)
	items := bson.A{}
	total := 0.0
	for range 1 + rng.IntN(4) {
		price := float64(99+rng.IntN(20000)) / 100
		qty := int32(1 + rng.IntN(3))
		total += price * float64(qty)
		items = append(items, bson.D{
			{Key: "sku", Value: fmt.Sprintf("SKU-%05d", rng.IntN(5000))},
			{Key: "name", Value: pick(products)},
			{Key: "qty", Value: qty},
			{Key: "price", Value: price},
		})
	}
	words := make([]string, 6+rng.IntN(14))
	for i := range words {
		words[i] = pick(vocabulary)
	}
	doc := bson.D{
		{Key: "_id", Value: id},
		{Key: "orderNo", Value: int64(r.seq)},
		{Key: "placed", Value: bson.NewDateTimeFromTime(placed)},
		{Key: "status", Value: pick(statuses)},
		{Key: "customer", Value: bson.D{
			{Key: "name", Value: first + " " + last},
			{Key: "email", Value: fmt.Sprintf("%s.%s%d@%s", strings.ToLower(first), strings.ToLower(last), rng.IntN(100), pick(domains))},
			{Key: "phone", Value: fmt.Sprintf("+33 6 %02d %02d %02d %02d", rng.IntN(100), rng.IntN(100), rng.IntN(100), rng.IntN(100))},
			{Key: "address", Value: bson.D{
				{Key: "street", Value: fmt.Sprintf("%d %s", 1+rng.IntN(200), pick(streets))},
				{Key: "city", Value: pick(cities)},
				{Key: "zip", Value: fmt.Sprintf("%05d", rng.IntN(100000))},
				{Key: "country", Value: "FR"},
			}},
		}},
		{Key: "items", Value: items},
		{Key: "total", Value: float64(int64(total*100)) / 100},
		{Key: "currency", Value: "EUR"},
		{Key: "paid", Value: rng.IntN(10) != 0},
		{Key: "note", Value: strings.Join(words, " ")},
	}
	out, err := bson.Marshal(doc)
	if err != nil {
		panic(err) // only fixed types above
	}
	return out
}

// SeedRecords inserts records into the collections named (each "db.coll"),
// in turns of a batch, until about total bytes of BSON are stored, the
// collections filled in parallel. It returns the bytes and documents
// inserted.
func SeedRecords(ctx context.Context, client *mongo.Client, namespaces []string, total int64) (bytes, docs int64, err error) {
	const batchBytes = 1 << 20
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(namespaces))
	for i, ns := range namespaces {
		db, coll, _ := strings.Cut(ns, ".")
		c := client.Database(db).Collection(coll)
		share := total / int64(len(namespaces))
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := NewRecords(uint64(i))
			var n, d int64
			for n < share {
				var batch []any
				for size := 0; size < batchBytes && n < share; {
					doc := bson.Raw(gen.Next())
					batch = append(batch, doc)
					size += len(doc)
					n += int64(len(doc))
				}
				if _, err := c.InsertMany(ctx, batch); err != nil {
					errs[i] = fmt.Errorf("seed %s: %w", ns, err)
					return
				}
				d += int64(len(batch))
			}
			mu.Lock()
			bytes += n
			docs += d
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return bytes, docs, e
		}
	}
	return bytes, docs, nil
}

var (
	firstNames = []string{"Alice", "Bruno", "Camille", "David", "Emma", "Fatima", "Gabriel", "Hugo", "Ines", "Jules",
		"Karim", "Louise", "Manon", "Nathan", "Oscar", "Paul", "Quentin", "Rose", "Sarah", "Thomas",
		"Ugo", "Victor", "William", "Yasmine", "Zoe", "Lea", "Lucas", "Chloe", "Adam", "Mila"}
	lastNames = []string{"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
		"Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
		"Morel", "Girard", "Andre", "Lefevre", "Mercier", "Dupont", "Lambert", "Bonnet", "Francois", "Martinez"}
	domains  = []string{"example.com", "mail.example.org", "example.net", "shop.example", "post.example.fr"}
	streets  = []string{"rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue du Moulin", "place de la Gare", "chemin des Vignes", "rue Pasteur", "allee des Tilleuls", "rue de l'Eglise", "quai des Chartrons"}
	cities   = []string{"Paris", "Lyon", "Marseille", "Toulouse", "Nice", "Nantes", "Strasbourg", "Montpellier", "Bordeaux", "Lille", "Rennes", "Reims", "Grenoble", "Dijon", "Angers", "Brest"}
	statuses = []string{"pending", "paid", "shipped", "delivered", "returned"}
	products = []string{"espresso cup", "linen towel", "oak cutting board", "ceramic bowl", "steel kettle", "wool blanket",
		"desk lamp", "notebook A5", "fountain pen", "travel mug", "cotton apron", "glass carafe", "herb planter",
		"bread knife", "salad spinner", "tea infuser", "candle set", "picture frame", "bath mat", "door mat"}
	vocabulary = strings.Fields(`please leave the parcel at the door if nobody answers call before delivery gift wrap
		requested second floor code entry building B ring twice fragile handle with care back order customer asked
		for invoice with company name address changed after order was placed refund issued partially item missing
		from box replacement sent express shipping weekend delivery not possible contact by email only loyal
		customer since first order discount applied voucher expired price match accepted stock checked warehouse
		north south pick up in store tomorrow morning evening afternoon late early thanks again happy with service
		size exchange colour blue green red black white large small medium quality issue reported photo attached`)
)
