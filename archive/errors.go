package archive

import "github.com/keepslot/keepslot/errcode"

// Errors returned by the readers and writers of this package. They are
// wrapped with a message that names the entry, namespace or offset at fault,
// so compare them with errors.Is.
var (
	// ErrCorrupt reports malformed or truncated input: a bad BSON frame, a
	// CRC, sha256 or document count that does not match, a missing
	// manifest or end-of-namespace block. The archive should not be
	// restored; fetch an intact copy.
	ErrCorrupt = errcode.New(errcode.Corrupt, "archive: corrupt or truncated archive")

	// ErrUnsafePath reports a tar entry that could escape the extraction
	// directory or is not a plain file: a path with "..", an absolute path,
	// a symbolic or hard link, a device or a FIFO. Such an archive was not
	// written by this package and must not be extracted.
	ErrUnsafePath = errcode.New(errcode.Corrupt, "archive: unsafe tar entry")

	// ErrTooLarge reports a BSON length below 5 bytes or above
	// MaxDocumentSize, and a metadata or manifest entry above its limit.
	// Errors from readers wrap ErrCorrupt as well.
	ErrTooLarge = errcode.New(errcode.Corrupt, "archive: size out of range")

	// ErrUnknownFormat reports input whose first bytes match none of the
	// known compressions and formats, or an unsupported format version.
	ErrUnknownFormat = errcode.New(errcode.Corrupt, "archive: unknown archive format")

	// ErrUnknownNamespace reports a namespace that the archive (or the
	// Header given to a Writer) does not declare, or a namespace declared
	// twice. Errors from readers wrap ErrCorrupt as well.
	ErrUnknownNamespace = errcode.New(errcode.Corrupt, "archive: unknown namespace")

	// ErrIncomplete reports a Writer closed before every collection of its
	// Header was written and closed. What was written is not a valid
	// archive.
	ErrIncomplete = errcode.New(errcode.Internal, "archive: archive incomplete")
)
