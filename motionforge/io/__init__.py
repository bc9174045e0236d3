"""Reading and writing files: flow files and optical flow of a driving video (the image and video readers and writers join them)."""
