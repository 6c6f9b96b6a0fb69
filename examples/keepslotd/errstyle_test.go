package main

import (
	"testing"

	"github.com/keepslot/keepslot/examples/internal/errstyle"
)

// TestErrorTexts holds keepslotd's own error texts to the style its
// package documentation states: no prefix, neither a package's name nor
// its own.
func TestErrorTexts(t *testing.T) {
	errstyle.Check(t)
}
