package archive

// TarFormat is the tar format: mongodump's directory layout under "dump/"
// plus a closing manifest.json. Its zero value reads only tars with that
// manifest, and holds what it spills (see Spill) in os.TempDir().
type TarFormat struct {
	// AllowMissingManifest lets the reader accept a tar without
	// manifest.json, such as a tarred mongodump directory. Such a tar has
	// no integrity check: a cut at an entry boundary goes unnoticed. And
	// where a .bson entry precedes its .metadata.json (this package writes
	// all metadata first), the Collection that Next returns for it has
	// only its database and name; Collections has the rest at the end.
	// Files and directories beside mongodump's layout (a README, notes
	// beside the .bson files) are passed over, as mongorestore does, and
	// listed by [Skipped]; all of them together may take at most 1 MiB
	// (sizes, names and headers), past which the entry that passes it is
	// refused (ErrTooLarge) before its body is read.
	//
	// Without it, a tar whose first entry is not one this package writes
	// first (the metadata of a collection, dump/oplog.bson or
	// manifest.json, with no owner recorded) is refused at that entry, so
	// that a tar without a manifest is refused before any document is
	// read; one that imitates this package's first entry is refused at its
	// end, for want of manifest.json.
	AllowMissingManifest bool

	// Spill applies to a Reader with AllowMissingManifest, which returns
	// oplog.bson last, wherever the tar has it (`tar czf` orders a dump
	// directory as the file system lists it): the reader holds the oplog
	// until the end of the tar, in memory if it is at most
	// Spill.Threshold bytes, else in a temporary file in Spill.Dir,
	// removed once the oplog is read, on an error, and on Close (the
	// Reader implements io.Closer). A Writer takes its Spill from
	// WriterOptions instead.
	Spill Spill
}

// Name returns "tar".
func (TarFormat) Name() string { return "tar" }

// Extension returns ".tar".
func (TarFormat) Extension() string { return ".tar" }

// Match reports whether head starts with a POSIX (ustar) tar header.
func (TarFormat) Match(head []byte) bool {
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

const (
	tarRoot      = "dump"
	manifestName = "manifest.json"
	bsonExt      = ".bson"
	metadataExt  = ".metadata.json"
	spillPattern = "keepslot-archive-*.bson.tmp"
	preludeFile  = "prelude.json" // written by mongodump 100.x, not read
)

func tarBase(c Collection) string {
	if c.IsOplog() {
		return tarRoot + "/" + oplogName
	}
	return tarRoot + "/" + c.DB + "/" + escapeName(c.Name)
}
