# The embedded default dataset: synthetic G-banded metaphases from the ISCN ideogram.


rule synthesize:
    output:
        directory(f"{RESULTS}/synthetic/{{name}}"),
    log:
        f"{RESULTS}/logs/synthesize/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/synthesize/{{name}}.tsv"
    conda:
        ENV
    params:
        synth=config["synthetic"]["params"],
        seed=SEED,
    script:
        "../scripts/synthesize.py"
