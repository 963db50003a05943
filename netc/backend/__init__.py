"""The torch backend: IR graphs → readable PyTorch source → ``nn.Module``, TorchScript, ONNX.

``emit`` (torch-free) writes the source; ``build`` executes that same source;
``compile_cmd`` implements ``netc compile``. Import the submodules directly:
this package imports nothing, so ``netc.backend.emit`` stays torch-free.
"""
