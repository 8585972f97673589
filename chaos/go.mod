module github.com/fencekit/fencekit/chaos

go 1.25.0

replace github.com/fencekit/fencekit => ../
