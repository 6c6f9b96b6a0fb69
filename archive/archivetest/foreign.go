package archivetest

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/s2"

	"github.com/keepslot/keepslot/archive"
)

// Foreign is a Compression that archive.Open does not know (S2 streams,
// recognised by their stream identifier), for tests that a program hands
// its own compressions through to archive.Open (OpenOptions), as
// restore.Options.Compressions does.
var Foreign archive.Compression = foreign{}

type foreign struct{}

var s2Magic = []byte("\xff\x06\x00\x00S2sTwO")

func (foreign) Name() string           { return "s2" }
func (foreign) Extension() string      { return ".s2" }
func (foreign) Match(head []byte) bool { return bytes.HasPrefix(head, s2Magic) }

func (foreign) NewWriter(w io.Writer) (io.WriteCloser, error) {
	return s2.NewWriter(w, s2.WriterConcurrency(1)), nil
}

func (foreign) NewReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(s2.NewReader(r)), nil
}
