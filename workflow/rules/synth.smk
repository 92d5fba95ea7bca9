# The embedded default dataset: synthetic G-banded metaphases from the ISCN ideogram.


rule synthesize:
    output:
        directory("results/synthetic/{name}"),
    log:
        "results/logs/synthesize/{name}.log",
    benchmark:
        "results/benchmarks/synthesize/{name}.tsv"
    conda:
        ENV
    params:
        synth=config["synthetic"]["params"],
        seed=SEED,
    script:
        "../scripts/synthesize.py"
