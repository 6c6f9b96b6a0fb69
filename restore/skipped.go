package restore

import "github.com/keepslot/keepslot/archive"

// noteSkipped notes the entries the archive passed over: files that a
// tarred mongodump directory holds beside its layout, such as a README.
func (r *restorer) noteSkipped(ar archive.Reader) {
	for _, s := range archive.Skipped(ar) {
		r.note("%q (%d bytes) is not part of mongodump's layout: skipped, as mongorestore skips it", s.Name, s.Size)
	}
}
