"""The PyTorch column of docs/api.md: for every public name, how it compares with PyTorch.

Each status starts with one of
    same            the same name, signature (as far as it goes here) and semantics as PyTorch's;
    differs         PyTorch has the concept under this name, and this is how ours differs, and why;
    not in PyTorch  this library's own (the closest PyTorch tool is named where there is one).
Keys are the names as the page lists them, without the `tinygrad_lite.` prefix (`nn.Linear`,
`Tensor.sum`, `optim.lr_scheduler.StepLR.get_lr`); a key may be an fnmatch pattern (`models.*`), used for
the names that no exact key covers. tests/test_api_doc.py renders the column and fails when a public
name has no status or a key names nothing.

Entries describe the library once issue 15 is done. PENDING_CORE holds those of names that the core
part of the issue adds on main (in-place ops, t(), dim() ...): the stale-key check skips them until they exist.
"""

from __future__ import annotations

NUMBERS = "the numbers drawn differ from PyTorch's for the same seed (numpy's PCG64, not torch's Mersenne Twister)"
STATIC = "not in PyTorch as a Tensor method: PyTorch has the module-level function (here too: tinygrad_lite.{})"
FUSED = "not in PyTorch: the fused Function behind the functional form of the same name (forward and backward)"

PYTORCH: dict[str, str] = {
    # ---- tinygrad_lite ----------------------------------------------------------------------------------------
    "Tensor": "same concept as torch.Tensor: here a numpy ndarray on the CPU (no device=, storage or strides); "
              "`Tensor(data, requires_grad=, dtype=)` takes data like torch.tensor",
    "Function": "differs: plays torch.autograd.Function's part, but each op is an instance that keeps what it saves "
                "on self (no ctx argument, no save_for_backward)",
    "Function.apply": "same: `MyFunction.apply(*inputs)` runs forward and records the op",
    "Function.name": "not in PyTorch: the op's name with its parameters, for graphs and errors (grad_fn.name() is "
                     "the closest)",
    "Function.forward": "differs: receives the inputs' ndarrays (and keyword parameters, also on self.params), "
                        "not a ctx and tensors",
    "Function.backward": "differs: receives the output gradient as a Tensor and returns one Tensor per input, written "
                         "in Tensor ops so that create_graph can differentiate it; reads self.parents and "
                         "self.output, no ctx; a gradient may keep the output's broadcast shape",
    "Function.output": "not in PyTorch: the output Tensor, for backward (torch saves it with ctx.save_for_backward)",
    "Function.release": "not in PyTorch: frees the saved arrays after backward (torch does this implicitly)",
    "no_grad": "same: context manager and decorator, per thread",
    "enable_grad": "same",
    "is_grad_enabled": "same",
    "gradcheck": "differs: the inputs follow the function as *inputs, where torch.autograd.gradcheck takes one tuple; "
                 "fast= is torch's fast_mode=; same eps, atol and rtol defaults",
    "gradgradcheck": "differs as gradcheck does (*inputs); same tolerances; grad_outputs= as torch's; the error also "
                     "names the ops that fail on their own",
    "nn.Conv1d": "same: stride, padding (int, tuple, 'same', 'valid'), dilation, groups, bias, padding_mode",
    "nn.Conv2d": "same: stride, padding (int, tuple, 'same', 'valid'), dilation, groups, bias, padding_mode",
    "nn.MaxPool2d": "same: kernel_size, stride, padding, dilation, ceil_mode, return_indices; ties as torch",
    "nn.AvgPool2d": "same: count_include_pad, ceil_mode, divisor_override",
    "nn.AdaptiveAvgPool2d": "same",
    "nn.BatchNorm1d": "same: running statistics as buffers, train/eval, momentum (None: a cumulative average)",
    "nn.BatchNorm2d": "same: running statistics as buffers, train/eval, momentum (None: a cumulative average)",
    "nn.functional.conv1d": "same", "nn.functional.conv2d": "same", "nn.functional.max_pool2d": "same",
    "nn.functional.avg_pool2d": "same", "nn.functional.adaptive_avg_pool2d": "same",
    "nn.functional.pad": "same: constant, reflect, replicate, circular",
    "nn.functional.unfold": "same (im2col)", "nn.functional.batch_norm": "same",
    "nn.conv.*": FUSED + "; and their references, the same maths from primitive ops",
    "cli.*": "not in PyTorch: how the example scripts end a user's mistake in one line (exit status 2)",
    "profiler.*": "not in PyTorch as such: torch.profiler.profile(record_shapes=...) is the closest; here each op's "
                  "forward and backward time, exclusive of the ops it runs",
    "gradgradcheck_report": "not in PyTorch: gradgradcheck's per-input table, without raising",
    "hessian": "same idea as torch.func.hessian(f, argnums)(*args); takes and returns ndarrays",
    "hvp": "differs: hvp(f)(*args, v) returns H v as an ndarray, by double backward; "
           "torch.autograd.functional.hvp(f, inputs, v) returns (value, hvp)",
    "jvp": "differs: jvp(f)(*args, v) returns (value, J v) by the double-vjp trick; torch.func.jvp(f, primals, "
           "tangents) uses forward mode",
    "autograd.grad": "same: outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused; returns a tuple",
    "nn.functional.dropout_mask": "not in PyTorch: the inverted-dropout multipliers (0 or 1/(1-p)) that F.dropout "
                                  "and attention's dropout multiply by",
    "GradcheckError": "same: torch.autograd.gradcheck.GradcheckError; it also carries the full report (.report)",
    "tensor": "same: a copy; an ndarray keeps its dtype, Python floats give float32, ints int64, bools bool "
              "(no device=, pin_memory=)",
    "from_numpy": "same: shares the array's memory and keeps its dtype",
    "zeros": "same (no out=, layout=, device=)",
    "ones": "same (no out=, layout=, device=)",
    "full": "same: the dtype follows the fill value (bool, int64, float32)",
    "eye": "same",
    "arange": "same: int64 for integer arguments, float32 otherwise, values start + i * step",
    "rand": f"same signature; {NUMBERS}",
    "randn": f"same signature; {NUMBERS}",
    "randint": f"same signatures, randint(high, size) and randint(low, high, size); {NUMBERS}",
    "zeros_like": "same (no memory_format=)",
    "ones_like": "same (no memory_format=)",
    "full_like": "same (no memory_format=)",
    "rand_like": f"same; {NUMBERS}",
    "randn_like": f"same; {NUMBERS}",
    "cat": "same: dim=, or numpy's axis= (torch accepts both)",
    "stack": "same: dim=, or numpy's axis= (torch accepts both)",
    "where": "same: torch.where(cond, a, b)",
    "manual_seed": f"same: seeds the global generator and returns it; {NUMBERS}",
    "seed": "same",
    "initial_seed": "same",
    "get_rng_state": "differs: the state is numpy's bit-generator dict (which tinygrad_lite.save stores), not a "
                     "uint8 tensor",
    "set_rng_state": "differs: takes the dict from get_rng_state, not a uint8 tensor",
    "Generator": "same: `Generator().manual_seed(0)`, passed as generator=; it is a numpy Generator too, so numpy's "
                 "methods work on it",
    "Generator.manual_seed": "same: returns the generator",
    "Generator.seed": "same",
    "Generator.initial_seed": "same: 67280421310721 for a fresh Generator, as torch's",
    "Generator.get_state": "differs: a dict (numpy's bit-generator state), not a uint8 tensor",
    "Generator.set_state": "differs: takes the dict from get_state",
    "save": "differs: writes pickle-free .npz (dicts, lists, tuples, arrays, tensors, numbers, strings), so that "
            "loading never runs code; torch.save pickles any object",
    "load": "differs: reads save's .npz and gives numpy arrays back (torch.load(weights_only=True) is the closest)",
    "grad": "differs: torch.func.grad's idea, but the gradients come back as numpy arrays",
    "value_and_grad": "differs: JAX's name and order, (value, gradient); torch.func.grad_and_value returns "
                      "(gradient, value)",
    "jacobian": "same idea as torch.autograd.functional.jacobian (shape output.shape + input.shape); numpy arrays back",
    "check_model": "not in PyTorch: gradcheck of every parameter of a model for a loss, one report row each",
    "gradcheck_report": "not in PyTorch: gradcheck's comparison as a table instead of a verdict",
    "AnomalyError": "not in PyTorch: torch's anomaly mode raises a RuntimeError; this one says op, phase, module "
                    "and source line",
    "detect_anomaly": "same: torch.autograd.detect_anomaly; it also stops at the first NaN/Inf of a forward output",
    "draw_graph": "not in PyTorch: torchviz's make_dot is the closest",
    "trace": "not in PyTorch: torchinfo's summary is the closest",
    # ---- Tensor -----------------------------------------------------------------------------------------------
    "Tensor.abs": "same",
    "Tensor.add": "same (no alpha=)",
    "Tensor.arange": STATIC.format("arange"),
    "Tensor.argmax": "same: dim= and keepdim= (numpy's axis= and keepdims= too); no gradient",
    "Tensor.any": "same: dim= (an int or, as torch 2.2+, a tuple) and keepdim=; a bool result, no gradient",
    "Tensor.all": "same: dim= (an int or, as torch 2.2+, a tuple) and keepdim=; a bool result, no gradient",
    "Tensor.argmin": "same: dim= and keepdim= (numpy's axis= and keepdims= too); no gradient",
    "Tensor.astype": "not in PyTorch: numpy's name for to(dtype)",
    "Tensor.backward": "same: gradient=, retain_graph= (default create_graph), create_graph=, inputs=",
    "Tensor.erf": "same",
    "Tensor.mT": "same",
    "Tensor.sum_to_size": "same",
    "Tensor.broadcast_to": "same",
    "Tensor.cat": STATIC.format("cat"),
    "Tensor.chunk": "same",
    "Tensor.clamp": "same: the gradient passes where min <= x <= max",
    "Tensor.clip": "same: torch's alias of clamp",
    "Tensor.data": "same: the raw values outside the graph; here a numpy ndarray, and assigning a Tensor takes its "
                   "array",
    "Tensor.detach": "same: shares the data",
    "Tensor.div": "same (no rounding_mode=)",
    "Tensor.double": "same",
    "Tensor.dtype": "differs: a numpy dtype (np.float32), not torch.float32",
    "Tensor.exp": "same",
    "Tensor.expand": "same: -1 keeps a dimension",
    "Tensor.eye": STATIC.format("eye"),
    "Tensor.flatten": "same: start_dim=, end_dim=",
    "Tensor.float": "same",
    "Tensor.full": STATIC.format("full"),
    "Tensor.gelu": "same as torch.nn.functional.gelu (not a Tensor method in torch): approximate='none' (exact erf) "
                   "by default, or 'tanh'",
    "Tensor.grad": "same",
    "Tensor.grad_fn": "same: here the Function that made the tensor",
    "Tensor.is_leaf": "same",
    "Tensor.item": "same",
    "Tensor.log": "same",
    "Tensor.log_softmax": "same: dim= (and axis=)",
    "Tensor.logsumexp": "same: dim= and keepdim= (and axis=, keepdims=)",
    "Tensor.long": "same",
    "Tensor.masked_fill": "same: mask broadcastable to the tensor",
    "Tensor.matmul": "same: batched and broadcast, 1-D operands as torch.matmul",
    "Tensor.max": "same: max() a 0-d tensor, max(dim) the named tuple (values, indices); ties share the gradient "
                  "equally (torch's amax does that, torch's max(dim) gives it to one)",
    "Tensor.maximum": "same: ties split the gradient in half",
    "Tensor.mean": "same: dim= and keepdim= (and axis=, keepdims=)",
    "Tensor.min": "same: min() a 0-d tensor, min(dim) the named tuple (values, indices)",
    "Tensor.minimum": "same: ties split the gradient in half",
    "Tensor.mul": "same",
    "Tensor.name": "not in PyTorch: a label for repr and draw_graph (torch's names are named dimensions)",
    "Tensor.ndim": "same",
    "Tensor.neg": "same",
    "Tensor.numel": "same",
    "Tensor.numpy": "same: the array itself, shared",
    "Tensor.ones": STATIC.format("ones"),
    "Tensor.ones_like": STATIC.format("ones_like"),
    "Tensor.permute": "same",
    "Tensor.pow": "same",
    "Tensor.randn": STATIC.format("randn") + "; seed= takes an int or a Generator",
    "Tensor.relu": "same: gradient 0 at 0",
    "Tensor.requires_grad": "same",
    "Tensor.requires_grad_": "same",
    "Tensor.reshape": "same: one dimension may be -1",
    "Tensor.retain_grad": "same",
    "Tensor.shape": "same values; a tuple where torch has torch.Size",
    "Tensor.sigmoid": "same",
    "Tensor.size": "same: size() the shape, size(d) one dimension",
    "Tensor.softmax": "same: dim= (and axis=); rows of -inf give exact zeros",
    "Tensor.split": "same: a size or a list of sizes",
    "Tensor.sqrt": "same",
    "Tensor.square": "same",
    "Tensor.squeeze": "same: no argument, one dim or a tuple (torch >= 2.0)",
    "Tensor.stack": STATIC.format("stack"),
    "Tensor.std": "same: dim=, keepdim=, correction= (no unbiased=); exactly 0 for constant input, with gradient 0",
    "Tensor.sub": "same (no alpha=)",
    "Tensor.sum": "same: dim= and keepdim= (numpy's axis= and keepdims= too; not both)",
    "Tensor.T": "same: all axes reversed (torch deprecates .T beyond 2-D; use permute or mT)",
    "Tensor.tanh": "same",
    "Tensor.to": "differs: to(dtype) only: there is no device to move to and no copy=/non_blocking=",
    "Tensor.tolist": "same",
    "Tensor.transpose": "same: both dimensions required",
    "Tensor.uniform": "not in PyTorch: a constructor of uniform samples (torch.rand, or Tensor.uniform_ in place)",
    "Tensor.unsqueeze": "same",
    "Tensor.var": "same: dim=, keepdim=, correction= (no unbiased=); exactly 0 for constant input",
    "Tensor.view": "differs: a reshape; numpy decides whether it copies, where torch's view never copies and refuses "
                   "an incompatible layout",
    "Tensor.where": STATIC.format("where"),
    "Tensor.zero_grad": "not in PyTorch as a Tensor method: sets .grad to None",
    "Tensor.zeros": STATIC.format("zeros"),
    "Tensor.zeros_like": STATIC.format("zeros_like"),
    "Tensor operators": "same: + - * / ** @ with broadcasting and numbers on either side, torch's dtype promotion; "
                        "+=, -=, *=, /= and x[key] = v change the tensor in place as torch's (a leaf that requires "
                        "grad only inside no_grad); differs in two places: on a tensor recorded in the graph the new "
                        "values do not write through to a tensor it is a view of (numpy views are not torch's "
                        "tracked views), and backward refuses when any input of an op (not only a saved one) was "
                        "changed in place after the op used it: never a wrong gradient, sometimes an error where "
                        "torch would compute",
    # ---- nn ---------------------------------------------------------------------------------------------------
    "nn.Module": "same: Parameters, Modules and buffers found by attribute, forward, __call__",
    "nn.Module.register_buffer": "same: persistent= decides whether it is in state_dict",
    "nn.Module.named_modules": "same (prefix=; no memo= or remove_duplicate=)",
    "nn.Module.modules": "same",
    "nn.Module.children": "same",
    "nn.Module.named_children": "same",
    "nn.Module.named_parameters": "same: shared parameters once (no prefix= or recurse=)",
    "nn.Module.parameters": "differs: a list where torch gives an iterator (it iterates the same and can be reused)",
    "nn.Module.named_buffers": "same (no prefix= or recurse=)",
    "nn.Module.buffers": "differs: a list where torch gives an iterator",
    "nn.Module.apply": "same: children first, then the module; returns it",
    "nn.Module.num_parameters": "not in PyTorch: sum(p.numel() for p in model.parameters())",
    "nn.Module.train": "same",
    "nn.Module.eval": "same",
    "nn.Module.zero_grad": "same: set_to_none=True by default",
    "nn.Module.requires_grad_": "same",
    "nn.Module.to": "differs: to(dtype), or to('cpu') which changes nothing: there is no other device",
    "nn.Module.float": "same",
    "nn.Module.double": "same",
    "nn.Module.state_dict": "differs: the values are copies as numpy arrays, not tensors (no prefix= or keep_vars=)",
    "nn.Module.load_state_dict": "same: strict=; a RuntimeError lists missing and unexpected keys and size "
                                 "mismatches; returns (missing_keys, unexpected_keys); copies in place (no assign=)",
    "nn.Module.extra_repr": "same",
    "nn.ModuleList": "same (append; no insert, extend or slicing into a ModuleList)",
    "nn.ModuleList.append": "same",
    "nn.Parameter": "differs: always requires grad (no requires_grad= argument); dtype= added",
    "nn.Sequential": "same for positional modules (no OrderedDict form)",
    "nn.Linear": "same: weight and bias U(±1/sqrt(in_features)) as torch's default; seed= added (no device=, dtype=)",
    "nn.Embedding": "differs: no padding_idx, max_norm or sparse; seed= added; weight N(0, 1) as torch's",
    "nn.LayerNorm": "same: eps=, bias= (no elementwise_affine=False)",
    "nn.Dropout": "same: p=; seed= added (no inplace=)",
    "nn.ReLU": "same (no inplace=)",
    "nn.Sigmoid": "same",
    "nn.Tanh": "same",
    "nn.GELU": "same: approximate='none' (exact erf) by default, or 'tanh'",
    "nn.Identity": "same: takes and ignores any arguments",
    "nn.Flatten": "same: start_dim=1, end_dim=-1",
    "nn.Unflatten": "same for a tuple of sizes (no named-dimension form)",
    "nn.Softmax": "same: dim=None picks torch's deprecated implicit dimension, with its warning",
    "nn.LogSoftmax": "same",
    "nn.LeakyReLU": "same (no inplace=)",
    "nn.SiLU": "same (no inplace=)",
    "nn.ELU": "same (no inplace=)",
    "nn.Softplus": "same: beta=, threshold=",
    "nn.CrossEntropyLoss": "same options (weight=, ignore_index=-100, reduction=, label_smoothing=), passed to "
                           "F.cross_entropy; the deprecated size_average= and reduce= are left out",
    "nn.MSELoss": "same: reduction= (no deprecated size_average=, reduce=); input and target must have one shape "
                  "(torch broadcasts with a warning)",
    "nn.L1Loss": "same: reduction=; input and target must have one shape",
    "nn.NLLLoss": "same: weight=, ignore_index=-100, reduction=, classes on dimension 1",
    "nn.BCELoss": "same: weight= (a buffer), logs clamped at -100",
    "nn.BCEWithLogitsLoss": "same: weight= and pos_weight= (buffers)",
    "*.forward": "same: the module's computation, run by calling the module",
    "*.extra_repr": "same",
    # ---- nn.functional --------------------------------------------------------------------------------------------
    "nn.functional.*.apply": FUSED,
    "nn.functional.linear": "same",
    "nn.functional.cross_entropy": "same: class indices or class probabilities, weight=, ignore_index=, "
                                   "label_smoothing=, reduction=; differs in one place: logits of more than 2 "
                                   "dimensions have the classes on the last axis ((B, T, C), the GPT's layout) where "
                                   "torch has them on dimension 1",
    "nn.functional.mse_loss": "same: reduction=; input and target must have one shape",
    "nn.functional.layer_norm": "same",
    "nn.functional.embedding": "same: embedding(input, weight) (no padding_idx=, max_norm=)",
    "nn.functional.dropout": "same: p=, training= (training=True by default, as torch); rng= (a seed or Generator) "
                             "added, no inplace=",
    "nn.functional.relu": "same (no inplace=)",
    "nn.functional.gelu": "same: approximate='none' (exact erf) or 'tanh'",
    "nn.functional.sigmoid": "same (torch.sigmoid)",
    "nn.functional.tanh": "same (torch.tanh)",
    "nn.functional.softmax": "same: dim= (axis= too)",
    "nn.functional.log_softmax": "same: dim= (axis= too)",
    "nn.functional.one_hot": "same: num_classes=-1 means max + 1; int64",
    "nn.functional.leaky_relu": "same: gradient negative_slope at 0 (no inplace=)",
    "nn.functional.silu": "same (no inplace=)",
    "nn.functional.elu": "same (no inplace=)",
    "nn.functional.softplus": "same: beta=, threshold=; exact for very negative inputs",
    "nn.functional.l1_loss": "same: reduction=; input and target must have one shape",
    "nn.functional.nll_loss": "same: weight=, ignore_index=-100, reduction=; (N, C), (C,) or (N, C, d1, ...)",
    "nn.functional.binary_cross_entropy": "same: weight=, logs clamped at -100; at a probability of exactly 0 or 1 "
                                          "the clamped side's gradient is 0, where torch divides by a 1e-12 floor",
    "nn.functional.binary_cross_entropy_with_logits": "same: weight=, pos_weight=",
    "nn.functional.scaled_dot_product_attention": "differs: the boolean mask (True = may attend, as torch's) is "
                                                  "called mask= where torch says attn_mask=, and float masks are not "
                                                  "taken; rng= added; no scale= or enable_gqa=",
    "nn.attention.*": "not in PyTorch: attention's fused op, its step-by-step reference and its weights, for reading",
    # ---- nn.init ------------------------------------------------------------------------------------------------
    "nn.init.calculate_gain": "same values",
    "nn.init.uniform_": f"same: generator= (a Generator or an int seed); {NUMBERS}",
    "nn.init.normal_": f"same: generator=; {NUMBERS}",
    "nn.init.trunc_normal_": "same distribution and bounds; drawn by rejection or by inverting the normal CDF, "
                             "where torch uses erfinv",
    "nn.init.constant_": "same",
    "nn.init.ones_": "same",
    "nn.init.zeros_": "same",
    "nn.init.eye_": "same",
    "nn.init.xavier_uniform_": "same fans and bound",
    "nn.init.xavier_normal_": "same fans and std",
    "nn.init.kaiming_uniform_": "same fans, gain and bound",
    "nn.init.kaiming_normal_": "same fans, gain and std",
    # ---- nn.utils ------------------------------------------------------------------------------------------------
    "nn.utils.clip_grad_norm_": "same: norm_type= (inf too), error_if_nonfinite=; returns the norm as a 0-d tensor; "
                                "foreach= accepted and ignored; a max_norm <= 0 is an error (torch zeroes or flips the "
                                "gradients); also optim.clip_grad_norm_, for older callers",
    "nn.utils.clip_grad_value_": "same (foreach= ignored)",
    "nn.utils.parameters_to_vector": "same: differentiable",
    "nn.utils.vector_to_parameters": "differs: copies into the parameters' arrays, where torch makes them views of "
                                     "the vector",
    # ---- optim ---------------------------------------------------------------------------------------------------
    "optim.Optimizer": "same: parameter groups, per-parameter state, add_param_group",
    "optim.Optimizer.add_param_group": "same",
    "optim.Optimizer.zero_grad": "same: set_to_none=True by default",
    "optim.Optimizer.step": "differs: no closure= argument",
    "optim.Optimizer.state_dict": "same layout ({'state': ..., 'param_groups': ...}); numpy arrays, and 'step' an int",
    "optim.Optimizer.load_state_dict": "same",
    "optim.SGD": "differs: lr has no default (torch's is 1e-3); no maximize=, foreach=, fused=; the same update",
    "optim.Adam.step": "differs: no closure= argument (as Optimizer.step); the compiled updates run in one call",
    "optim.Adam": "same update (no amsgrad=, maximize=, foreach=, fused=, capturable=)",
    "optim.AdamW": "same update (no amsgrad=, maximize=, foreach=, fused=, capturable=)",
    "optim.RMSprop": "same update, step for step (no maximize=, foreach=, capturable=)",
    "optim.Adagrad": "same update, step for step; state made at construction as torch's (no maximize=, foreach=)",
    # ---- optim.lr_scheduler ----------------------------------------------------------------------------------------
    "optim.lr_scheduler.LRScheduler": "same: chainable, last_epoch=; torch's warning about stepping before the "
                                      "optimizer is left out",
    "optim.lr_scheduler.LRScheduler.step": "differs: no epoch= argument (deprecated in torch)",
    "optim.lr_scheduler.LRScheduler.get_last_lr": "same",
    "optim.lr_scheduler.LRScheduler.state_dict": "same: everything but the optimizer",
    "optim.lr_scheduler.LRScheduler.load_state_dict": "same",
    "optim.lr_scheduler.*.get_lr": "same: the chainable form, the same floating-point operations as torch's",
    "optim.lr_scheduler.LambdaLR": "same: one lambda or one per group",
    "optim.lr_scheduler.LambdaLR.state_dict": "same: lambdas that are objects are saved by their attributes",
    "optim.lr_scheduler.LambdaLR.load_state_dict": "same",
    "optim.lr_scheduler.StepLR": "same",
    "optim.lr_scheduler.MultiStepLR": "same",
    "optim.lr_scheduler.ExponentialLR": "same",
    "optim.lr_scheduler.CosineAnnealingLR": "same: the recursive form, bit for bit",
    "optim.lr_scheduler.LinearLR": "same",
    "optim.lr_scheduler.OneCycleLR": "same: cycles momentum or Adam's beta1",
    "optim.lr_scheduler.cosine_with_warmup": "not in PyTorch: nanoGPT's warm-up and cosine, as a function of the "
                                             "step (LambdaLR makes it a scheduler)",
    # ---- data, datasets, random --------------------------------------------------------------------------------------
    "data.Dataset": "same: torch.utils.data.Dataset (no + for concatenation)",
    "data.TensorDataset": "same",
    "data.Subset": "same",
    "data.random_split": "same: lengths or fractions; generator= a Generator or an int seed",
    "data.default_collate": "same rules (tensors and arrays stacked, floats float64, ints int64, tuples to lists)",
    "data.DataLoader": "differs: dataset, batch_size, shuffle, collate_fn, drop_last and generator only: no worker "
                       "processes, samplers or pinned memory, and batch_size=None is not taken",
    "datasets.*": "not in PyTorch: MNIST and Tiny Shakespeare as arrays and text (torchvision.datasets.MNIST is the "
                  "closest)",
    "random.get_generator": "not in PyTorch: how every random draw picks the given Generator, a seeded one, or the "
                            "global one",
    # ---- the tools -------------------------------------------------------------------------------------------------
    "gradcheck.*": "not in PyTorch: the parts of gradcheck's report (torch.autograd.gradcheck only says pass or fail)",
    "viz.*": "not in PyTorch: graph drawing and shape traces (torchviz and torchinfo are the closest)",
    "anomaly.is_anomaly_enabled": "same: torch.is_anomaly_enabled",
    "anomaly.ENV_VAR": "not in PyTorch: anomaly mode switched on from the environment",
    "ops.*": "not in PyTorch: helpers for writing ops",
    "perf.get_num_threads": "same: torch.get_num_threads",
    "perf.set_num_threads": "same: torch.set_num_threads",
    "perf.*": "not in PyTorch: the engine's memory and threading helpers",
    "kernels.*": "not in PyTorch: the compiled loops (C) behind layer norm, the tanh GELU, Adam, attention's "
                 "softmax, max pooling, batch norm, the convolution's col2im and dropout's masks, and their switch",
    "nn.compiled.*": "not in PyTorch: layer norm, the tanh GELU, max pooling and batch norm on the compiled loops "
                     "(PyTorch has its own kernels)",
    "tensor.*": "not in PyTorch: the engine's graph walk and hooks",
    "models.*": "not in PyTorch: this project's models and their data",
}

PENDING_CORE: dict[str, str] = {
    "Tensor.add_": "same: in place, returns self; on a leaf that requires grad only inside no_grad",
    "Tensor.sub_": "same: in place, returns self",
    "Tensor.mul_": "same: in place, returns self",
    "Tensor.div_": "same: in place, returns self",
    "Tensor.zero_": "same: in place, returns self",
    "Tensor.fill_": "same: in place, returns self",
    "Tensor.copy_": "same: in place, returns self",
    "Tensor.clamp_": "same: in place, returns self",
    "Tensor.masked_fill_": "same: in place, returns self",
    "Tensor.uniform_": f"same: in place, from the global generator unless generator= is given; {NUMBERS}",
    "Tensor.normal_": f"same: in place, from the global generator unless generator= is given; {NUMBERS}",
    "Tensor.clone": "same: a copy that stays in the graph",
    "Tensor.contiguous": "same",
    "Tensor.dim": "same",
    "Tensor.t": "same: 2-D or less",
    "Tensor.amax": "same: ties share the gradient equally",
    "Tensor.amin": "same: ties share the gradient equally",
}
