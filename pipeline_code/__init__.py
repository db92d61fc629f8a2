"""The fraud-detection experiment: data generator, pipeline step scripts and the pipeline definition.

Modules listed in ``images.CONTAINER_MODULES`` also run inside SageMaker containers, so they import only
the standard library, numpy, pandas, scikit-learn and each other. This file stays empty of imports so that
``python -m pipeline_code.<step>`` loads nothing else in a container.
"""
