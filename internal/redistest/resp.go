package redistest

import "github.com/fencekit/fencekit/internal/resp"

// The raw RESP2 client of package resp, under the names this package uses.
type respError = resp.Error

var (
	rawDo       = resp.Do
	rawPipeline = resp.Pipeline
	rawString   = resp.String
)
