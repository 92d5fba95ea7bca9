"""Training: HDF5 -> tf.data, Keras fit with tracked options, devices, MLflow."""
