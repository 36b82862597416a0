require ["editheader","index","fileinto","copy"];
addheader "X-A" "café long value that goes on and on and on and on and on and on and on and on";
fileinto :copy "A";
deleteheader :index 1 :last "to";
deleteheader :matches "subject" "*h*";
addheader :last "X-B" "b
c";
