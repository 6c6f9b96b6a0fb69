package s3store

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"

	"github.com/keepslot/keepslot/store"
)

// object is a store.Object over a minio.Object, which reads with ranged
// GETs: Read streams from the current offset, ReadAt and Seek start new
// requests where they are needed.
type object struct {
	*minio.Object
	info store.Info
}

func (o *object) Info() store.Info {
	i := o.info
	i.Meta = make(map[string]string, len(o.info.Meta))
	for k, v := range o.info.Meta {
		i.Meta[k] = v
	}
	return i
}

// openKey opens key, whose Info is info, checking that the server holds
// info.Size bytes under it.
func (c *client) openKey(ctx context.Context, key string, info store.Info) (*object, error) {
	o, err := c.core.Client.GetObject(ctx, c.bucket, key, minio.GetObjectOptions{ServerSideEncryption: c.getSSE()})
	if err != nil {
		return nil, c.wrap("opening "+key, err)
	}
	st, err := o.Stat()
	if err != nil {
		o.Close()
		return nil, c.wrap("opening "+key, err)
	}
	if st.Size != info.Size {
		o.Close()
		return nil, fmt.Errorf("%w: %s holds %d bytes, its record says %d", store.ErrCorrupt, key, st.Size, info.Size)
	}
	return &object{Object: o, info: info}, nil
}
