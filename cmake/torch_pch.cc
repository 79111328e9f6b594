// Translation unit that carries the shared libtorch precompiled header.
#include <torch/torch.h>
