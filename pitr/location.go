package pitr

import (
	"fmt"

	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// Location says where a node's copies are on a remote: its exported
// backups under Prefix/Node/ and its oplog slices under
// Prefix/Node/oplog/. Give the Remote, Prefix and Node of the node's
// slot.ExportConfig: the slices go beside the backups it exports.
type Location struct {
	// Remote holds the copies, e.g. an s3store.Remote. Required.
	Remote store.Remote

	// Prefix starts every key, e.g. "keepslot"; may be empty.
	Prefix string

	// Node names the node in the keys; default the host name, as for
	// slot.ExportConfig. It may not hold a slash.
	Node string
}

// NodePrefix is the key prefix, ending in "/", of the node's copies:
// Prefix/Node/, with Node defaulted as a slot.ExportConfig's is. It fails
// with ErrInvalid without a Remote or for a Node with a slash.
func (l Location) NodePrefix() (string, error) {
	if l.Remote == nil {
		return "", fmt.Errorf("%w: no remote (Location.Remote)", ErrInvalid)
	}
	p, err := slot.ExportConfig{Remote: l.Remote, Prefix: l.Prefix, Node: l.Node}.NodePrefix()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}
