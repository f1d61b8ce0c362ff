"""pyinit-doctor: the 502 risks of a Dockerfile and Kubernetes manifests, found before a deploy.

Reading (``load``, ``dockerfile``, ``manifest``) turns files into a model of
workloads, images, Services, Ingresses and PodDisruptionBudgets. ``process``
works out what each container runs as PID 1 and how pyinit (or dumb-init, or
tini) would be configured there, with pyinit's own command-line parser;
``timeline`` lays out its shutdown inside the pod's grace period with pyinit's
own budget rule. The ``checks`` turn that into findings, ``render`` prints them.
"""
