// Package imagebuild builds OCI/Docker container images from declarative
// descriptions, without a container engine and without network access.
//
// A [Layer] is a list of [Entry] values (files, directories, symlinks and
// hard links with explicit mode and ownership). [Layer.Build] turns it into a
// gzip-compressed tar [Blob] whose bytes depend only on the entries: entries
// are sorted, timestamps are fixed and no host metadata (user names, atime,
// xattrs) leaks in. An [Image] stacks blobs and adds a config; [Image.Build]
// returns a go-containerregistry v1.Image, and [Index] wraps images into a
// (possibly single-platform) image index. Building the same description twice
// yields identical digests, so tags pushed from different runs on the same
// host refer to the same content.
//
// Content comes from memory ([File]), from host files ([HostFile],
// [HostTree]) or, for dynamically linked host programs, with their loader
// and libraries ([SharedLibraries]).
//
// [Push], [PushIndex] and [PushAll] write the result to a registry;
// registries on loopback addresses are contacted over plain HTTP.
package imagebuild
