// Package benchkit holds what hack/bench (cri-rt against containerd) and
// hack/pullbench (image pull against its floors) share, so that both pull
// the same generated images from the same kind of registry and time the
// same floors:
//
//   - the layer generator and the two pull images built from it (same
//     seed, same bytes, same digests);
//   - a local docker-registry and the push of those images to it;
//   - children (registry, daemons) started and stopped the same way;
//   - the transfer (curl), gunzip and unpack floors;
//   - the host facts a report names (machine, load, filesystem) and the
//     host chores around a run (sync, unmount, peak RSS).
package benchkit
