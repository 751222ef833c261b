"""Export a trained run to other tools: a mesh, a point cloud, depth maps, and the spiking student as NIR.

``mesh`` samples the density on a grid and runs marching cubes; ``pointcloud``
lifts the rendered depth of the training views; ``depth`` writes the expected
depth and opacity of the test views; ``neuromorphic`` turns the student's
spiking MLP into a Neuromorphic Intermediate Representation graph and checks it
by simulating the graph read back from the file. Exports only read the run.
"""
