#include "data/audio/fft.h"

#include <cmath>

namespace emosweep::data::audio {
namespace {

inline Cpx Mul(Cpx a, Cpx b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
inline Cpx Add(Cpx a, Cpx b) { return {a.re + b.re, a.im + b.im}; }
inline Cpx Sub(Cpx a, Cpx b) { return {a.re - b.re, a.im - b.im}; }

Cpx Root(double num, double den) {  // e^{-2 pi i num/den}
  const double a = -2.0 * M_PI * num / den;
  return {float(std::cos(a)), float(std::sin(a))};
}

}  // namespace

Result<ComplexFft> ComplexFft::Create(int n) {
  if (n < 1) return Status::InvalidArgument("FFT size must be positive, got " + std::to_string(n));
  ComplexFft f;
  f.n_ = n;
  std::vector<int> radices;
  int rest = n;
  for (int r : {4, 2, 3, 5}) {
    while (rest % r == 0) {
      radices.push_back(r);
      rest /= r;
    }
  }
  if (rest != 1) return Status::InvalidArgument("FFT size " + std::to_string(n) + " has a prime factor above 5");
  int len = n, stride = 1;
  for (int r : radices) {
    Stage s{r, len, stride, f.twiddles_.size()};
    const int m = len / r;
    for (int p = 0; p < m; ++p) {
      for (int k = 1; k < r; ++k) f.twiddles_.push_back(Root(double(p) * k, len));
    }
    f.stages_.push_back(s);
    len = m;
    stride *= r;
  }
  return f;
}

// Stockham decimation in frequency: stage (radix r, length len, stride s)
// reads x[q + s(p + jm)] and writes y[q + s(rp + k)] = (DFT_r of a_j)[k] * w_len^{pk}.
Cpx* ComplexFft::Forward(Cpx* x, Cpx* y) const {
  const Cpx w3 = Root(1, 3);
  for (const Stage& st : stages_) {
    const int r = st.radix, s = st.stride, m = st.n / r;
    const Cpx* tw = twiddles_.data() + st.twiddle_offset;
    for (int p = 0; p < m; ++p) {
      const Cpx* w = tw + size_t(p) * (r - 1);
      for (int q = 0; q < s; ++q) {
        const Cpx* in = x + q + size_t(s) * p;
        Cpx* out = y + q + size_t(s) * r * p;
        const size_t sm = size_t(s) * m;
        if (r == 4) {
          const Cpx a0 = in[0], a1 = in[sm], a2 = in[2 * sm], a3 = in[3 * sm];
          const Cpx t0 = Add(a0, a2), t1 = Sub(a0, a2), t2 = Add(a1, a3);
          const Cpx d = Sub(a1, a3);
          const Cpx t3{d.im, -d.re};  // (a1 - a3) * (-i)
          out[0] = Add(t0, t2);
          out[s] = Mul(Add(t1, t3), w[0]);
          out[2 * s] = Mul(Sub(t0, t2), w[1]);
          out[3 * s] = Mul(Sub(t1, t3), w[2]);
        } else if (r == 2) {
          const Cpx a = in[0], b = in[sm];
          out[0] = Add(a, b);
          out[s] = Mul(Sub(a, b), w[0]);
        } else if (r == 3) {
          const Cpx a0 = in[0], a1 = in[sm], a2 = in[2 * sm];
          const Cpx w3c{w3.re, -w3.im};
          out[0] = Add(a0, Add(a1, a2));
          out[s] = Mul(Add(a0, Add(Mul(a1, w3), Mul(a2, w3c))), w[0]);
          out[2 * s] = Mul(Add(a0, Add(Mul(a1, w3c), Mul(a2, w3))), w[1]);
        } else {  // radix 5 with real constants (c_k = cos 2pi k/5, s_k = sin 2pi k/5)
          constexpr float c1 = 0.30901699437494745f, c2 = -0.8090169943749473f;
          constexpr float s1 = 0.9510565162951535f, s2 = 0.5877852522924732f;
          const Cpx a0 = in[0], a1 = in[sm], a2 = in[2 * sm], a3 = in[3 * sm], a4 = in[4 * sm];
          const Cpx b1 = Add(a1, a4), b2 = Add(a2, a3), d1 = Sub(a1, a4), d2 = Sub(a2, a3);
          const Cpx t1{a0.re + c1 * b1.re + c2 * b2.re, a0.im + c1 * b1.im + c2 * b2.im};
          const Cpx t2{a0.re + c2 * b1.re + c1 * b2.re, a0.im + c2 * b1.im + c1 * b2.im};
          const Cpx u1{s1 * d1.re + s2 * d2.re, s1 * d1.im + s2 * d2.im};
          const Cpx u2{s2 * d1.re - s1 * d2.re, s2 * d1.im - s1 * d2.im};
          out[0] = {a0.re + b1.re + b2.re, a0.im + b1.im + b2.im};
          out[s] = Mul({t1.re + u1.im, t1.im - u1.re}, w[0]);      // t1 - i u1
          out[2 * s] = Mul({t2.re + u2.im, t2.im - u2.re}, w[1]);  // t2 - i u2
          out[3 * s] = Mul({t2.re - u2.im, t2.im + u2.re}, w[2]);  // t2 + i u2
          out[4 * s] = Mul({t1.re - u1.im, t1.im + u1.re}, w[3]);  // t1 + i u1
        }
      }
    }
    std::swap(x, y);
  }
  return x;
}

Result<RealFft> RealFft::Create(int n) {
  if (n < 2 || n % 2 != 0) return Status::InvalidArgument("real FFT size must be even, got " + std::to_string(n));
  RealFft f;
  f.n_ = n;
  ES_ASSIGN_OR_RETURN(f.half_, ComplexFft::Create(n / 2));
  for (int k = 0; k <= n / 2; ++k) f.post_.push_back(Root(k, n));
  return f;
}

void RealFft::Forward(const float* in, Cpx* out, Cpx* workspace) const {
  const int m = n_ / 2;
  Cpx* z = workspace;
  Cpx* tmp = workspace + m;
  for (int j = 0; j < m; ++j) z[j] = {in[2 * j], in[2 * j + 1]};
  const Cpx* Z = half_.Forward(z, tmp);
  // X[k] = E[k] + w^k O[k], E = (Z[k] + conj Z[m-k]) / 2, O = (Z[k] - conj Z[m-k]) / 2i.
  out[0] = {Z[0].re + Z[0].im, 0.f};
  out[m] = {Z[0].re - Z[0].im, 0.f};
  for (int k = 1; k < m; ++k) {
    const Cpx a = Z[k], b = Z[m - k];
    const Cpx e{0.5f * (a.re + b.re), 0.5f * (a.im - b.im)};
    const Cpx o{0.5f * (a.im + b.im), -0.5f * (a.re - b.re)};
    out[k] = Add(e, Mul(post_[k], o));
  }
}

void RealFft::Power(const float* in, float* out, Cpx* workspace) const {
  const int m = n_ / 2;
  Cpx* z = workspace;
  Cpx* tmp = workspace + m;
  for (int j = 0; j < m; ++j) z[j] = {in[2 * j], in[2 * j + 1]};
  const Cpx* Z = half_.Forward(z, tmp);
  const float x0 = Z[0].re + Z[0].im, xm = Z[0].re - Z[0].im;
  out[0] = x0 * x0;
  out[m] = xm * xm;
  for (int k = 1; k < m; ++k) {
    const Cpx a = Z[k], b = Z[m - k];
    const Cpx e{0.5f * (a.re + b.re), 0.5f * (a.im - b.im)};
    const Cpx o{0.5f * (a.im + b.im), -0.5f * (a.re - b.re)};
    const Cpx x = Add(e, Mul(post_[k], o));
    out[k] = x.re * x.re + x.im * x.im;
  }
}

}  // namespace emosweep::data::audio
