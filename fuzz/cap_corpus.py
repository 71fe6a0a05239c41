#!/usr/bin/env python3
"""Picks what fuzz/run.sh adds to a checked-in corpus: at most CAP files in
all, chosen greedily for the coverage edges they add, from the control file
of a libFuzzer merge (-merge=1 -merge_control_file=FILE).

    cap_corpus.py CONTROL_FILE DEST_DIR CAP

The merge's first corpus is what DEST_DIR holds already (kept whole); the
files of the others are candidates. Each round adds the candidate that
reaches the most edges not yet reached, until none adds any or DEST_DIR
holds CAP files. Copies go to DEST_DIR under their own names (libFuzzer
names them by the SHA-1 of their content). Prints what it kept.
"""

import heapq
import os
import shutil
import sys


def read_control(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        lines = f.read().split("\n")
    count, first = int(lines[0]), int(lines[1])
    files = lines[2 : 2 + count]
    cover = {}
    for line in lines[2 + count :]:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "COV":
            cover[int(parts[1])] = set(parts[2:])
    return files, first, cover


def main():
    control, dest, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
    files, first, cover = read_control(control)
    reached = set()
    for index in range(first):
        reached |= cover.get(index, set())
    kept = len(os.listdir(dest))
    # Lazy greedy: a candidate's gain only shrinks as edges are reached.
    heap = [(-len(cover.get(i, ())), i) for i in range(first, len(files))]
    heapq.heapify(heap)
    added = 0
    while heap and kept < cap:
        negative, index = heapq.heappop(heap)
        gain = len(cover.get(index, set()) - reached)
        if gain == 0:
            continue
        if heap and gain < -heap[0][0]:
            heapq.heappush(heap, (-gain, index))
            continue
        reached |= cover[index]
        shutil.copy(files[index], os.path.join(dest, os.path.basename(files[index])))
        kept += 1
        added += 1
    left = set().union(*cover.values()) - reached if cover else set()
    print(f"added {added} files; {kept} in {dest}; {len(reached)} edges reached, {len(left)} left out")


if __name__ == "__main__":
    main()
