#!/usr/bin/env python3
"""The torchaudio pipeline a researcher would otherwise run (the anchor of
bench/audio_frontend_bench): torchaudio.load + MelSpectrogram(n_fft=400,
hop_length=160, n_mels=64) + log + mean/std of the frames and of their deltas,
on one thread. Prints one JSON document on stdout.

Timings are the best of --repeat passes, as wall time and as process CPU
time (the CPU figure is robust to other load on a shared machine):
  end_to_end_s   decode + (resample if needed) + features, file by file
  features_s     features only, on waveforms loaded beforehand
--dump N adds the 256-d vectors of the first N files, in the order
[mean(logmel), std(logmel), mean(delta), std(delta)] with population std,
so the C++ bench can report how far its own values are from these.
"""
import argparse
import json
import os
import sys
import time

import torch
import torchaudio


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wav-dir", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dump", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    files = sorted(os.path.join(a.wav_dir, f) for f in os.listdir(a.wav_dir) if f.lower().endswith(".wav"))
    if not files:
        print(f"torchaudio_anchor: no .wav files in {a.wav_dir}", file=sys.stderr)
        return 2
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160, n_mels=64)

    def features(wav):
        lm = torch.log(mel(wav) + 1e-6)  # [1, 64, T]
        d = torchaudio.functional.compute_deltas(lm)
        return torch.cat([lm.mean(-1), lm.std(-1, unbiased=False), d.mean(-1), d.std(-1, unbiased=False)], dim=1)

    def load(path):
        wav, sr = torchaudio.load(path)
        if wav.shape[0] > 1:
            wav = wav.mean(0, keepdim=True)
        if sr != 16000:
            wav = torchaudio.functional.resample(wav, sr, 16000)
        return wav

    dumped = []
    best_e2e = best_feat = float("inf")
    best_e2e_cpu = best_feat_cpu = float("inf")
    audio_s = 0.0
    with torch.no_grad():
        features(load(files[0]))  # warm-up (allocator, kernels)
        for _ in range(a.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            total = 0.0
            for i, f in enumerate(files):
                wav = load(f)
                total += wav.shape[1] / 16000.0
                v = features(wav)
                if len(dumped) < a.dump and i == len(dumped):
                    dumped.append([float(x) for x in v[0]])
            best_e2e = min(best_e2e, time.perf_counter() - t0)
            best_e2e_cpu = min(best_e2e_cpu, time.process_time() - c0)
            audio_s = total
        wavs = [load(f) for f in files]
        for _ in range(a.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            for w in wavs:
                features(w)
            best_feat = min(best_feat, time.perf_counter() - t0)
            best_feat_cpu = min(best_feat_cpu, time.process_time() - c0)

    json.dump({
        "pipeline": "torchaudio.load + MelSpectrogram(n_fft=400, hop_length=160, n_mels=64) + log + mean/std (+deltas)",
        "torch": torch.__version__, "torchaudio": torchaudio.__version__, "threads": a.threads,
        "files": len(files), "audio_s": audio_s, "end_to_end_s": best_e2e, "features_s": best_feat,
        "end_to_end_cpu_s": best_e2e_cpu, "features_cpu_s": best_feat_cpu,
        "rtf_end_to_end": audio_s / best_e2e, "rtf_features": audio_s / best_feat,
        "rtf_end_to_end_cpu": audio_s / best_e2e_cpu, "rtf_features_cpu": audio_s / best_feat_cpu, "dump": dumped,
    }, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
