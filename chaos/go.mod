module github.com/fencekit/fencekit/chaos

go 1.25.0

replace github.com/fencekit/fencekit => ../

require github.com/anishathalye/porcupine v1.3.1 // indirect
