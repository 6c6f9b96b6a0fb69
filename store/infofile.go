package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// infoFile is the on-disk form of Info, the commit record of a DirStore: the
// object exists exactly when this file exists under infoName.
type infoFile struct {
	Version int               `json:"version"`
	Object  string            `json:"object"` // the data file's name in the directory
	Name    string            `json:"name"`
	Size    int64             `json:"size"`
	MD5     string            `json:"md5"`
	SHA256  string            `json:"sha256"`
	Created time.Time         `json:"created"`
	Meta    map[string]string `json:"meta"`
}

const (
	infoVersion = 1
	maxInfoSize = MaxNameLen + 2*MaxMetaSize + 64<<10 // generous bound, including JSON escapes
)

var (
	objectRE = regexp.MustCompile(`^object-[0-9a-f]{32}$`)
	md5RE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// MarshalCommitRecord encodes the commit record of a stored object: its
// Info and the name of the data object that holds its bytes, which must be
// "object-" and 32 lowercase hex digits. DirStore keeps it in info.json;
// other stores may keep theirs in the same form, and read it back with
// ParseCommitRecord.
func MarshalCommitRecord(object string, info Info) ([]byte, error) { return marshalInfo(object, info) }

// ParseCommitRecord decodes and checks a commit record written by
// MarshalCommitRecord. Its errors wrap ErrCorrupt: the record is not
// trusted, it may have been changed by anything with access to the store.
func ParseCommitRecord(b []byte) (object string, info Info, err error) { return parseInfo(b) }

func marshalInfo(object string, info Info) ([]byte, error) {
	b, err := json.Marshal(infoFile{
		Version: infoVersion,
		Object:  object,
		Name:    info.Name,
		Size:    info.Size,
		MD5:     info.MD5,
		SHA256:  info.SHA256,
		Created: info.Created,
		Meta:    info.Meta,
	})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseInfo decodes and checks an info file. Its errors wrap ErrCorrupt.
func parseInfo(b []byte) (object string, info Info, err error) {
	if len(b) > maxInfoSize {
		return "", Info{}, fmt.Errorf("%w: the info file is %d bytes, more than %d", ErrCorrupt, len(b), maxInfoSize)
	}
	var f infoFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return "", Info{}, fmt.Errorf("%w: the info file does not decode: %w", ErrCorrupt, err)
	}
	if dec.More() {
		return "", Info{}, fmt.Errorf("%w: the info file has data after its JSON object", ErrCorrupt)
	}
	switch {
	case f.Version != infoVersion:
		return "", Info{}, fmt.Errorf("%w: the info file has version %d; this program reads version %d", ErrCorrupt, f.Version, infoVersion)
	case !objectRE.MatchString(f.Object):
		return "", Info{}, fmt.Errorf("%w: the info file names the data file %q, which is not a name the store makes", ErrCorrupt, f.Object)
	case f.Size < 0:
		return "", Info{}, fmt.Errorf("%w: the info file gives a negative size", ErrCorrupt)
	case !md5RE.MatchString(f.MD5) || !sha256RE.MatchString(f.SHA256):
		return "", Info{}, fmt.Errorf("%w: the info file has malformed hashes", ErrCorrupt)
	}
	created := f.Created.Round(0).UTC()
	if y := created.Year(); y < 0 || y > 9999 {
		return "", Info{}, fmt.Errorf("%w: the info file gives a creation time in the year %d", ErrCorrupt, y)
	}
	if err := CheckName(f.Name); err != nil {
		return "", Info{}, fmt.Errorf("%w: the info file's name: %w", ErrCorrupt, err)
	}
	if err := validMeta(f.Meta); err != nil {
		return "", Info{}, fmt.Errorf("%w: the info file's metadata: %w", ErrCorrupt, err)
	}
	return f.Object, Info{
		Name:    f.Name,
		Size:    f.Size,
		MD5:     f.MD5,
		SHA256:  f.SHA256,
		Created: created,
		Meta:    cloneMeta(f.Meta),
	}, nil
}
