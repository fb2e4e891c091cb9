"""The HTTP front of the CIM server: the /cimom resource (authentication, DSP0200 headers,
M-POST), the size-limited keep-alive site, and the worker-thread pipeline."""
