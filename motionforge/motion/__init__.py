"""Building the motion plan: fusing and densifying hints (fuse), raster fields, curves, checked plain values."""
