package lua

// The scripts of package stream. Each variable's documentation is the
// header of its file.
var (
	// StreamAppend appends a chunk or a terminal marker to a session's
	// output stream, fenced; see stream_append.lua.
	StreamAppend = mustLoad("stream_append.lua")
	// StreamRead reads a page of an output stream and its newest entry;
	// see stream_read.lua.
	StreamRead = mustLoad("stream_read.lua")
	// StreamGroup creates a consumer group on an output stream; see
	// stream_group.lua.
	StreamGroup = mustLoad("stream_group.lua")
)
