package keepslot_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/internal/testkit/mongotest"
)

// TestMain gives the runnable examples a server: its client, and a
// database of three orders.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the examples compare what they print only
	srv, stop, err := mongotest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client, shop = srv.Client, srv.DB("shop")
	orders := []any{bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "tea"}}, bson.D{{Key: "_id", Value: 2}, {Key: "sku", Value: "cup"}}, bson.D{{Key: "_id", Value: 3}, {Key: "sku", Value: "pot"}}}
	if _, err := client.Database(shop).Collection("orders").InsertMany(context.Background(), orders); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// TestReadmeUsageIsTheExample checks that the README's usage block is the
// body of Example, which runs: the README's code compiles and works.
func TestReadmeUsageIsTheExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\nfunc Example\(\) \{\n(.*?)\n\t// Output:`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no func Example in example_test.go")
	}
	var body strings.Builder
	for line := range strings.Lines(string(m[1])) {
		body.WriteString(strings.TrimPrefix(line, "\t"))
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+body.String()+"\n```") {
		t.Errorf("README.md's usage block differs from the body of Example in example_test.go; copy it over:\n%s", body.String())
	}
}
