package archive

import (
	"encoding/json"
	"fmt"
	"time"
)

// ManifestVersion is the FormatVersion of the manifests this package
// writes.
const ManifestVersion = 1

// maxManifestSize bounds manifest.json when reading.
const maxManifestSize = 64 << 20

// Manifest summarizes an archive: who wrote it, when, and per namespace
// what it holds. The tar format stores it as manifest.json, its last entry.
type Manifest struct {
	FormatVersion              int // ManifestVersion
	ToolVersion, ServerVersion string
	Created                    time.Time
	Namespaces                 []NamespaceStats // in the order of the Header's collections
	// Oplog is what the archive holds of the oplog captured with it (see
	// DumpOptions.Oplog); nil when it holds none.
	Oplog *OplogStats
	// Node is the name of the node that wrote the archive, as it exports
	// its copies under (Header.Node): inside the archive, so that it is
	// authenticated with it. Empty when the writer did not say, and in
	// the archive format, which has no manifest of its own.
	Node string
}

// NamespaceStats is what an archive holds of one namespace.
type NamespaceStats struct {
	Namespace string `json:"namespace"`
	Documents int64  `json:"documents"`
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256,omitempty"` // of the .bson bytes (tar); may be empty for the archive format
}

// manifestJSON is the on-disk shape of manifest.json.
type manifestJSON struct {
	FormatVersion int              `json:"formatVersion"`
	ToolVersion   string           `json:"toolVersion"`
	ServerVersion string           `json:"serverVersion"`
	Created       time.Time        `json:"created"`
	Namespaces    []NamespaceStats `json:"namespaces"`
	Oplog         *spanJSON        `json:"oplog,omitempty"`
	Node          string           `json:"node,omitempty"`
}

// MarshalJSON encodes m as manifest.json holds it.
func (m *Manifest) MarshalJSON() ([]byte, error) {
	ns := m.Namespaces
	if ns == nil {
		ns = []NamespaceStats{}
	}
	return json.Marshal(manifestJSON{
		FormatVersion: m.FormatVersion,
		ToolVersion:   m.ToolVersion,
		ServerVersion: m.ServerVersion,
		Created:       m.Created.UTC(),
		Namespaces:    ns,
		Oplog:         m.Oplog.toJSON(),
		Node:          m.Node,
	})
}

// UnmarshalJSON decodes manifest.json.
func (m *Manifest) UnmarshalJSON(data []byte) error {
	var j manifestJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*m = Manifest{
		FormatVersion: j.FormatVersion,
		ToolVersion:   j.ToolVersion,
		ServerVersion: j.ServerVersion,
		Created:       j.Created,
		Namespaces:    j.Namespaces,
		Oplog:         j.Oplog.stats(),
		Node:          j.Node,
	}
	return nil
}

// Stats returns the stats of namespace ns and whether m lists it.
func (m *Manifest) Stats(ns string) (NamespaceStats, bool) {
	for _, s := range m.Namespaces {
		if s.Namespace == ns {
			return s, true
		}
	}
	return NamespaceStats{}, false
}

func parseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest.json is not valid JSON: %w", ErrCorrupt, err)
	}
	if m.FormatVersion != ManifestVersion {
		return nil, fmt.Errorf("%w: manifest.json has format version %d, this reader knows %d", ErrUnknownFormat, m.FormatVersion, ManifestVersion)
	}
	seen := make(map[string]bool, len(m.Namespaces))
	for _, s := range m.Namespaces {
		if seen[s.Namespace] {
			return nil, fmt.Errorf("%w: manifest.json lists %q twice", ErrCorrupt, s.Namespace)
		}
		seen[s.Namespace] = true
	}
	return &m, nil
}
