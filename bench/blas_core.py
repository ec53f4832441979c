# SPDX-License-Identifier: MIT
# Which kernels OpenBLAS picked, and how fast they are: prints the core OpenBLAS runs on
# (OPENBLAS_CORETYPE or its own detection) and the GFLOP/s of a 256x256 double GEMM on
# one thread. Run it under each setting, e.g. OPENBLAS_CORETYPE=Haswell python3 bench/blas_core.py
import ctypes
import os
import time

N = 256
ROW_MAJOR, NO_TRANS = 101, 111

blas = ctypes.CDLL("libopenblas.so.0")
blas.openblas_get_corename.restype = ctypes.c_char_p
blas.openblas_set_num_threads(1)
Matrix = ctypes.c_double * (N * N)
a, b, c = Matrix(*[0.5] * (N * N)), Matrix(*[0.25] * (N * N)), Matrix()


def gemm():
    blas.cblas_dgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, N, N, N, ctypes.c_double(1.0), a, N, b, N,
                     ctypes.c_double(0.0), c, N)


for _ in range(5):
    gemm()
best = float("inf")
for _ in range(7):
    start = time.perf_counter()
    for _ in range(10):
        gemm()
    best = min(best, (time.perf_counter() - start) / 10)
print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}: core "
      f"{blas.openblas_get_corename().decode()}, {2 * N ** 3 / best / 1e9:.2f} GFLOP/s (best of 7, 256^3 dgemm, 1 thread)")
