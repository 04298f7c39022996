package container

// WritableLayerUsage returns the bytes and inodes used by the writable
// layer of container id (for pkg/podmetrics), measured at most every
// usageTTL as for ContainerStats. It fails when the container has no
// writable layer.
func (c *Controller) WritableLayerUsage(id string) (bytes, inodes uint64, err error) {
	if _, err := c.Snapshots.UpperDir(snapshotKey(id)); err != nil {
		return 0, 0, err
	}
	bytes, inodes = c.writableLayerUsage(id)
	return bytes, inodes, nil
}
