package checkpoint

// EncodeCursor exposes the cursor encoding to package checkpoint_test, to
// craft cursors that List must refuse.
func EncodeCursor(seq int64, cpid string) string {
	return encodeCursor(listCursor{seq: seq, id: cpid})
}
