package mongotest_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/internal/testkit/mongotest"
)

func TestRoundTripTypes(t *testing.T) {
	s := mongotest.New(t)
	ctx := context.Background()
	coll := s.Client.Database(s.DB("app")).Collection("things")

	id := bson.NewObjectID()
	dec, err := bson.ParseDecimal128("1234.5678")
	require.NoError(t, err)
	when := time.Date(2026, 11, 22, 10, 4, 5, 0, time.UTC)
	doc := bson.D{
		{Key: "_id", Value: id},
		{Key: "s", Value: "héllo"},
		{Key: "i32", Value: int32(-7)},
		{Key: "i64", Value: int64(1) << 40},
		{Key: "f", Value: 3.25},
		{Key: "b", Value: true},
		{Key: "d", Value: bson.NewDateTimeFromTime(when)},
		{Key: "bin", Value: bson.Binary{Subtype: 0, Data: []byte{0, 1, 2, 255}}},
		{Key: "arr", Value: bson.A{int32(1), "two", bson.D{{Key: "x", Value: bson.A{3.0}}}}},
		{Key: "sub", Value: bson.D{{Key: "k", Value: "v"}}},
		{Key: "null", Value: nil},
	}
	if !s.Embedded { // FerretDB v1 has no decimal128.
		doc = append(doc, bson.E{Key: "dec", Value: dec})
	}
	_, err = coll.InsertOne(ctx, doc)
	require.NoError(t, err)

	var got bson.D
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got))
	want, err := bson.Marshal(doc)
	require.NoError(t, err)
	have, err := bson.Marshal(got)
	require.NoError(t, err)
	assert.Equal(t, bson.Raw(want).String(), bson.Raw(have).String())
}

func TestListingsAndStats(t *testing.T) {
	s := mongotest.New(t)
	ctx := context.Background()
	db := s.Client.Database(s.DB("shop"))
	orders := db.Collection("orders")

	_, err := orders.InsertMany(ctx, []any{
		bson.D{{Key: "sku", Value: "a"}, {Key: "qty", Value: 1}},
		bson.D{{Key: "sku", Value: "b"}, {Key: "qty", Value: 2}},
	})
	require.NoError(t, err)
	_, err = orders.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "sku", Value: 1}},
		Options: options.Index().SetName("sku_1").SetUnique(true),
	})
	require.NoError(t, err)
	require.NoError(t, db.CreateCollection(ctx, "empty"))

	dbs, err := s.Client.ListDatabaseNames(ctx, bson.D{})
	require.NoError(t, err)
	assert.Contains(t, dbs, s.DB("shop"))

	colls, err := db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"orders", "empty"}, colls)

	cur, err := orders.Indexes().List(ctx)
	require.NoError(t, err)
	var idx []bson.M
	require.NoError(t, cur.All(ctx, &idx))
	names := make([]string, 0, len(idx))
	for _, ix := range idx {
		names = append(names, ix["name"].(string))
	}
	assert.ElementsMatch(t, []string{"_id_", "sku_1"}, names)

	var stats bson.M
	require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}}).Decode(&stats))
	assert.EqualValues(t, 2, stats["collections"])
	assert.EqualValues(t, 2, stats["objects"])
}

func TestStopMakesServerUnreachable(t *testing.T) {
	s := mongotest.New(t)
	if !s.Embedded {
		t.Log("MONGODB_URI is set: a shared server is never stopped by a test; checked the ping only")
		require.NoError(t, s.Client.Ping(context.Background(), nil))
		return
	}
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := mongotest.Connect(ctx, s.URI)
	assert.Error(t, err)
}

// TestFreezerStopsAnswers freezes the server: a ping gets no answer until
// its deadline, and one after the thaw gets one.
func TestFreezerStopsAnswers(t *testing.T) {
	s := mongotest.New(t)
	if !s.Embedded {
		t.Log("MONGODB_URI is set: a shared server is never frozen by a test; checked the ping only")
		require.NoError(t, s.Client.Ping(context.Background(), nil))
		return
	}
	freeze, thaw := s.Freezer(t)
	freeze()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.Client.Ping(ctx, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a frozen server does not answer")
	thaw()
	assert.NoError(t, s.Client.Ping(context.Background(), nil))
}

// TestServerEndsWithTheTestProcess kills a test process that holds a
// server, as a timeout or a crash would, and checks that the server does
// not outlive it.
func TestServerEndsWithTheTestProcess(t *testing.T) {
	if os.Getenv(mongotest.EnvURI) != "" {
		t.Log("MONGODB_URI is set: no server is started; nothing to end")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MONGOTEST_HELPER=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var uri string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "helper uri: "); ok {
			uri = rest
			break
		}
	}
	require.NotEmpty(t, uri, "the helper printed no URI")
	addr := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err, "the server runs while its test does")
	conn.Close()

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	// The server sees EOF on its stdin and exits; poll for it, with a
	// deadline that only a server that stays up reaches.
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		require.True(t, time.Now().Before(deadline), "the server at %s outlived its test process", addr)
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHelperHoldServer is run by TestServerEndsWithTheTestProcess in a
// process of its own: it starts a server, prints its URI and waits to be
// killed.
func TestHelperHoldServer(t *testing.T) {
	if os.Getenv("MONGOTEST_HELPER") != "1" {
		t.Skip("run as a helper process only")
	}
	s := mongotest.New(t)
	fmt.Println("helper uri: " + s.URI)
	select {}
}
