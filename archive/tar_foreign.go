package archive

import (
	"archive/tar"
	"fmt"
	"slices"
	"strings"
)

// writtenFirst reports whether an entry is one that this package's writer
// puts first: a regular file without owner names, the metadata of a
// collection, oplog.bson (an archive of the oplog alone) or manifest.json
// (an empty archive). A tar made by tar(1) of a mongodump directory starts
// with a directory, and records its owners.
func writtenFirst(hdr *tar.Header, name string) bool {
	if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA || hdr.Uname != "" || hdr.Gname != "" {
		return false
	}
	if name == manifestName || name == tarRoot+"/"+oplogFile {
		return true
	}
	p := strings.Split(name, "/")
	return len(p) == 3 && p[0] == tarRoot && strings.HasSuffix(p[2], metadataExt)
}

// maxSkipped bounds what a tar Reader with AllowMissingManifest passes over
// of the entries outside mongodump's layout, all of them together: their
// sizes, their names, and a block each for their headers.
const maxSkipped = 1 << 20

// SkippedEntry is an entry of an archive that its Reader passed over: a
// file or directory that a tarred mongodump directory holds beside its
// layout, such as a README. Size is the bytes of its body.
type SkippedEntry struct {
	Name string
	Size int64
}

// Skipped returns the entries r has passed over so far (all of them once
// Next has returned io.EOF): those outside mongodump's layout that a tar
// read with TarFormat.AllowMissingManifest skips, as mongorestore does.
// Other Readers skip nothing.
func Skipped(r Reader) []SkippedEntry {
	if s, ok := r.(interface{ skipped() []SkippedEntry }); ok {
		return s.skipped()
	}
	return nil
}

func (r *tarReader) skipped() []SkippedEntry { return slices.Clone(r.skips) }

// skipForeign decides, from its header alone, on an entry that is not a
// collection file of mongodump's layout: the small prelude.json that
// mongodump writes at the root of a dump or of a database directory is
// passed over. With AllowMissingManifest (a tarred mongodump directory),
// so is anything else that is neither compressed by mongodump --gzip nor
// takes what is passed over past 1 MiB (their sizes, names and headers together), and it is recorded (Skipped).
// Anything else is refused before its body is read, so that an entry
// claiming gigabytes costs nothing.
func (r *tarReader) skipForeign(hdr *tar.Header, parts []string) error {
	base := ""
	if len(parts) > 0 {
		base = parts[len(parts)-1]
	}
	if len(parts) > 0 && len(parts) <= 2 && base == preludeFile {
		if hdr.Size > maxMetadataSize {
			return fmt.Errorf("%w: %w: tar entry %q is %d bytes, above the %d limit of a prelude.json", ErrCorrupt, ErrTooLarge, hdr.Name, hdr.Size, maxMetadataSize)
		}
		return nil // archive/tar skips its body on the next call
	}
	layout := fmt.Sprintf("(%s/<db>/<collection>.bson and .metadata.json, %s/%s, %s)", tarRoot, tarRoot, oplogFile, manifestName)
	if strings.HasSuffix(base, bsonExt+".gz") || strings.HasSuffix(base, metadataExt+".gz") {
		return fmt.Errorf("%w: tar entry %q (%d bytes) is compressed by mongodump --gzip, which this reader does not read: dump again without --gzip, or gunzip the files of the dump directory and tar it again", ErrCorrupt, hdr.Name, hdr.Size)
	}
	if !r.allowMissing {
		return fmt.Errorf("%w: tar entry %q (%d bytes) is not part of a mongodump layout %s, and a tar of this package holds nothing else; a tarred mongodump directory is read with TarFormat.AllowMissingManifest, which skips such entries",
			ErrCorrupt, hdr.Name, hdr.Size, layout)
	}
	cost := blockSize + int64(len(hdr.Name)) + max(hdr.Size, 0)
	if r.skipCost+cost > maxSkipped {
		return fmt.Errorf("%w: %w: tar entry %q (%d bytes) is not part of a mongodump layout %s, and skipping it would take what is skipped past %d bytes (%d entries skipped before it, %d bytes): re-pack the dump directory without it",
			ErrCorrupt, ErrTooLarge, hdr.Name, hdr.Size, layout, maxSkipped, len(r.skips), r.skipCost)
	}
	r.skipCost += cost
	r.skips = append(r.skips, SkippedEntry{Name: hdr.Name, Size: hdr.Size})
	return nil // archive/tar skips its body on the next call
}
