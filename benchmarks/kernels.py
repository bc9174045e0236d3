"""Time the kernels per backend (the `kernels` suite of `motionforge bench`, as a script): see motionforge/bench/kernels.py.

python benchmarks/kernels.py --save      # on a CUDA machine: µs, GB/s, fraction of the bandwidth floor, speed-up
"""

from motionforge.bench.kernels import main

if __name__ == "__main__":
    raise SystemExit(main())
