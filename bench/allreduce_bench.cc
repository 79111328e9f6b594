// bench/allreduce_bench.cc: the GradientReducer's bandwidth next to a plain
// MPI_Allreduce of the same bytes, in the same run, nccl-tests style.
//
//   mpirun -n 2 build/bench/allreduce_bench [--json] [--device cpu|cuda]
//
// --device cuda (builds with NCCL only): rank r reduces device memory on GPU
// r % (GPUs) through the NCCL reducer; the MPI_Allreduce baseline stays on
// host memory (Open MPI need not be CUDA-aware). NCCL refuses two ranks of one
// communicator on the same GPU, so run as many ranks as GPUs.
//
// Columns: size (bytes), count (floats), time (us, median of iterations),
// algbw = bytes / time, busbw = algbw × 2(n−1)/n (the bytes each rank must
// move in a ring allreduce, so busbw is comparable across rank counts), and a
// correctness column: max |result − expected| over the buffer.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cluster/world.h"

#if EMOSWEEP_HAVE_NCCL
#include <cuda_runtime_api.h>
#endif

using emosweep::cluster::BucketConfig;

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  std::string device = "cpu";
  for (int i = 1; i < argc; ++i) {
    json |= std::strcmp(argv[i], "--json") == 0;
    if (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc) device = argv[++i];
  }
  const bool on_gpu = device.rfind("cuda", 0) == 0;
#if !EMOSWEEP_HAVE_NCCL
  if (on_gpu) {
    std::fprintf(stderr, "--device %s: this build has no NCCL (configure with -DEMOSWEEP_WITH_NCCL=ON)\n", device.c_str());
    return 2;
  }
#endif
  auto w = emosweep::cluster::CreateWorld(&argc, &argv);
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", w.status().ToString().c_str());
    return 1;
  }
  auto& world = *w;
  const int rank = world->comm().rank(), n = world->comm().size();
  std::string red_device = "cpu";
#if EMOSWEEP_HAVE_NCCL
  if (on_gpu) {
    int gpus = 0;
    if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus <= 0) {
      std::fprintf(stderr, "rank %d: no CUDA device\n", rank);
      return 1;
    }
    red_device = "cuda:" + std::to_string(rank % gpus);
  }
#endif
  auto red = world->MakeGroupReducer(0, red_device, BucketConfig{});
  if (!red.ok()) {
    std::fprintf(stderr, "%s\n", red.status().ToString().c_str());
    return 1;
  }
  if (rank == 0 && !json) {
    std::printf("# emosweep allreduce bench: %d ranks, reducer backend %s on %s memory, buckets 1 MiB then 25 MiB;"
                " mpi = MPI_Allreduce on host memory\n", n, (*red)->backend(), on_gpu ? "device" : "host");
    std::printf("# busbw = algbw * 2(n-1)/n\n");
    std::printf("%12s %10s | %10s %9s %9s %9s | %10s %9s %9s | %7s\n", "size(B)", "count", "mpi(us)", "algbw", "busbw",
                "error", "red(us)", "busbw", "error", "red/mpi");
  }
  if (rank == 0 && json) std::printf("{\"ranks\": %d, \"backend\": \"%s\", \"rows\": [", n, (*red)->backend());
  bool first = true;
  for (size_t bytes = 4096; bytes <= (64u << 20); bytes *= 4) {
    const size_t count = bytes / sizeof(float);
    std::vector<float> buf(count);
    float* dev = nullptr;  // the reducer's buffer on the GPU (--device cuda)
#if EMOSWEEP_HAVE_NCCL
    if (on_gpu && cudaMalloc(reinterpret_cast<void**>(&dev), bytes) != cudaSuccess) {
      std::fprintf(stderr, "rank %d: cudaMalloc(%zu) failed\n", rank, bytes);
      return 1;
    }
#endif
    const int iters = bytes >= (16u << 20) ? 5 : 20;
    auto fill = [&] {
      for (size_t i = 0; i < count; ++i) buf[i] = static_cast<float>((rank + 1) * ((i % 97) + 1));
    };
    const double expect_factor = n * (n + 1) / 2.0;  // sum over ranks of (rank+1)
    auto error = [&] {
      double e = 0;
      for (size_t i = 0; i < count; ++i) e = std::max(e, std::fabs(buf[i] - expect_factor * ((i % 97) + 1)));
      return e;
    };
    std::vector<double> t_mpi, t_red;
    double err_mpi = 0, err_red = 0;
    for (int it = 0; it < iters + 2; ++it) {
      fill();
      MPI_Barrier(MPI_COMM_WORLD);
      auto t0 = std::chrono::steady_clock::now();
      MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (it >= 2) t_mpi.push_back(dt);
      err_mpi = std::max(err_mpi, error());
      fill();
      float* target = buf.data();
#if EMOSWEEP_HAVE_NCCL
      if (dev) {
        cudaMemcpy(dev, buf.data(), bytes, cudaMemcpyHostToDevice);
        target = dev;
      }
#endif
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = std::chrono::steady_clock::now();
      auto st = (*red)->AllreduceSum(target, count);  // synchronises its stream before returning
      dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!st.ok()) {
        std::fprintf(stderr, "rank %d: %s\n", rank, st.ToString().c_str());
        return 1;
      }
#if EMOSWEEP_HAVE_NCCL
      if (dev) cudaMemcpy(buf.data(), dev, bytes, cudaMemcpyDeviceToHost);
#endif
      if (it >= 2) t_red.push_back(dt);
      err_red = std::max(err_red, error());
    }
    // Time of the slowest rank counts.
    double m_mpi = Median(t_mpi), m_red = Median(t_red);
    MPI_Allreduce(MPI_IN_PLACE, &m_mpi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &m_red, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    const double factor = 2.0 * (n - 1) / n;
    const double alg_mpi = bytes / m_mpi / 1e9, alg_red = bytes / m_red / 1e9;
    if (rank == 0) {
      if (json) {
        std::printf("%s{\"bytes\": %zu, \"mpi_us\": %.1f, \"mpi_busbw_gbs\": %.3f, \"mpi_error\": %g, "
                    "\"reducer_us\": %.1f, \"reducer_busbw_gbs\": %.3f, \"reducer_error\": %g}",
                    first ? "" : ", ", bytes, m_mpi * 1e6, alg_mpi * factor, err_mpi, m_red * 1e6, alg_red * factor,
                    err_red);
      } else {
        std::printf("%12zu %10zu | %10.1f %9.3f %9.3f %9.1g | %10.1f %9.3f %9.1g | %7.2f\n", bytes, count, m_mpi * 1e6,
                    alg_mpi, alg_mpi * factor, err_mpi, m_red * 1e6, alg_red * factor, err_red, m_red / m_mpi);
      }
    }
    first = false;
#if EMOSWEEP_HAVE_NCCL
    if (dev) cudaFree(dev);
#endif
  }
  if (rank == 0 && json) std::printf("]}\n");
  return world->Finalize().ok() ? 0 : 1;
}
